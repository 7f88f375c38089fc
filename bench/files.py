"""Files benchmark: upload throughput of ``POST /v1/files`` (multipart, streamed into the NATS
Object Store) and the gateway's memory (RSS) while a 50 MB file passes; then how long the
notifier takes to upload it to the Telegram sandbox, and its memory meanwhile.

Run: ``uv run python bench/files.py [--rounds 3] [--mb 50]``.

Everything runs on 127.0.0.1 from ``cctelegram up`` (nats-server with its file store, the five
services, the sandbox). RSS is sampled every 10 ms from /proc; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.suite import processes_mentioning, start_suite

MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def service_pid(data_dir: Path, module: str) -> int:
    for pid in processes_mentioning(str(data_dir)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if module in cmdline:
            return pid
    raise SystemExit(f"no {module} process found")


class Sampler:
    """Peak RSS of one process while a block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> Sampler:
        self.before = rss_mb(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mb", type=int, default=50, help="file size in MiB (≤ 50)")
    args = parser.parse_args()
    size = args.mb * MB
    with tempfile.TemporaryDirectory() as temp:
        data_dir = Path(temp) / "data"
        source = Path(temp) / "upload.bin"
        with source.open("wb") as handle:
            for _ in range(args.mb):
                handle.write(os.urandom(MB))
        suite = start_suite(data_dir)
        try:
            gateway = service_pid(data_dir, "cctelegram_gateway")
            notifier = service_pid(data_dir, "cctelegram_notifier")
            base = suite.mcp_url.removesuffix("/mcp")
            headers = {"Authorization": f"Bearer {suite.api_key}"}
            uploads: list[float] = []
            deliveries: list[float] = []
            gateway_peaks: list[float] = []
            notifier_peaks: list[float] = []
            baseline_gateway = rss_mb(gateway)
            baseline_notifier = rss_mb(notifier)
            with httpx.Client(timeout=300) as client:
                for round_index in range(args.rounds):
                    name = f"bench-{round_index}-{time.time_ns()}.bin"
                    with Sampler(gateway) as gw, Sampler(notifier) as nt, source.open("rb") as f:
                        started = time.perf_counter()
                        response = client.post(
                            f"{base}/v1/files",
                            files={"file": (name, f, "application/octet-stream")},
                            headers=headers,
                        )
                        stored = time.perf_counter()
                        assert response.status_code == 201, response.text
                        while True:
                            messages = client.get(
                                f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages"
                            ).json()
                            # By caption: the sandbox, like Telegram, keeps one file_id (and
                            # the first name) for the same bytes.
                            if any(name in (m.get("caption") or "") for m in messages):
                                break
                            time.sleep(0.05)
                        delivered = time.perf_counter()
                    uploads.append(size / MB / (stored - started))
                    deliveries.append(delivered - stored)
                    gateway_peaks.append(gw.peak)
                    notifier_peaks.append(nt.peak)
                    print(
                        f"round {round_index + 1}: upload {uploads[-1]:.1f} MB/s "
                        f"({stored - started:.2f} s), at the sandbox {deliveries[-1]:.2f} s later; "
                        f"gateway RSS {gw.before:.0f} → peak {gw.peak:.0f} MB, "
                        f"notifier RSS {nt.before:.0f} → peak {nt.peak:.0f} MB"
                    )
        finally:
            suite.stop()
    print()
    print(f"file: {args.mb} MiB, {args.rounds} rounds, all on 127.0.0.1 (2 shared cores)")
    print(
        f"upload throughput (POST /v1/files → 201, stored in the object store and the send "
        f"queued): median {statistics.median(uploads):.1f} MB/s"
    )
    print(
        f"gateway RSS: {baseline_gateway:.0f} MB before, peak {max(gateway_peaks):.0f} MB "
        f"while the file passed (+{max(gateway_peaks) - baseline_gateway:.0f} MB)"
    )
    print(
        f"notifier → sandbox (object store → multipart sendDocument): median "
        f"{statistics.median(deliveries):.2f} s; notifier RSS {baseline_notifier:.0f} MB before, "
        f"peak {max(notifier_peaks):.0f} MB (+{max(notifier_peaks) - baseline_notifier:.0f} MB)"
    )


if __name__ == "__main__":
    main()
