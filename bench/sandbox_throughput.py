"""How many sendMessage calls per second the Telegram sandbox accepts (flood control off).

Starts `python -m cctelegram_sandbox` as a real server, then drives it from this process with
a lean keep-alive HTTP/1.1 client over raw asyncio streams (so the client, not the sandbox, is
cheap) and prints accepted sendMessage/s plus each side's CPU share.

    uv run python bench/sandbox_throughput.py [--requests 10000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit

from cctelegram_testing.sandbox import run_sandbox

CHAT_ID = 4242


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def _connection(
    host: str, port: int, path: str, jobs: asyncio.Queue[int], statuses: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            try:
                number = jobs.get_nowait()
            except asyncio.QueueEmpty:
                return
            body = json.dumps({"chat_id": CHAT_ID, "text": f"benchmark message {number}"}).encode()
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            statuses.append(status)
    finally:
        writer.close()


async def _drive(url: str, token: str, requests: int, concurrency: int) -> list[int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for number in range(requests):
        jobs.put_nowait(number)
    statuses: list[int] = []
    path = f"/bot{token}/sendMessage"
    await asyncio.gather(
        *(_connection(parts.hostname, parts.port, path, jobs, statuses) for _ in range(concurrency))
    )
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    runner = run_sandbox(subprocess=True, flood_control=False)
    with runner as sandbox:
        sandbox.create_chat(type="private", user={"id": CHAT_ID, "first_name": "Bench"})
        assert runner._process is not None
        server_pid = runner._process.pid
        # Warm up connections and code paths before measuring.
        asyncio.run(_drive(sandbox.url, sandbox.token, 500, 16))
        server_cpu_before = _process_cpu_s(server_pid)
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        statuses = asyncio.run(_drive(sandbox.url, sandbox.token, args.requests, args.concurrency))
        elapsed_s = time.perf_counter() - started
        client_cpu_s = time.process_time() - client_cpu_before
        server_cpu_s = _process_cpu_s(server_pid) - server_cpu_before
        stored = sandbox.stats()["messages_by_bot"]
    accepted = sum(1 for status in statuses if status == 200)
    print(f"requests:            {len(statuses)} ({args.concurrency} keep-alive connections)")
    print(f"accepted (200):      {accepted}   other statuses: {len(statuses) - accepted}")
    print(f"messages stored:     {stored}")
    print(f"elapsed:             {elapsed_s:.2f} s")
    print(f"accepted sendMessage/s: {accepted / elapsed_s:,.0f}")
    print(f"client CPU share:    {client_cpu_s / elapsed_s:.0%} of one core")
    print(f"sandbox CPU share:   {server_cpu_s / elapsed_s:.0%} of one core")
    # On a shared machine the wall-clock rate depends on the neighbours; CPU per call does not.
    per_call_ms = server_cpu_s / max(len(statuses), 1) * 1000
    print(
        f"sandbox CPU per call: {per_call_ms:.3f} ms -> {1000 / per_call_ms:,.0f} calls/s per core"
    )


if __name__ == "__main__":
    main()
