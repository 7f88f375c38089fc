"""Decision webhook latency: from a button press in the Telegram sandbox to the receiver
holding the signed POST, and the REST long-poll's latency on the same press.

Starts the whole suite with `cctelegram up` (CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS=127.0.0.1), a
webhook receiver on 127.0.0.1 that verifies every signature, and per round: `POST
/v1/approvals` with a `callback_url`, find the card, start `GET /v1/approvals/{id}?wait=60`,
press a button, and time press → long-poll answer and press → webhook received. The webhook
path: sandbox getUpdates → notifier → NATS → events (compare-and-set, queues the delivery on
CCTG_WEBHOOKS) → events-webhooks consumer → auth signs → HTTP POST. Prints p50 / p90 / p99.

    uv run python bench/webhooks.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_common.webhooks import verify_signature
from cctelegram_testing.bench import find_card, percentile
from cctelegram_testing.suite import start_suite


class Receiver:
    """A webhook receiver: records when each path was POSTed, checks the signature."""

    def __init__(self) -> None:
        self.secret = ""
        self.arrived: dict[str, float] = {}
        self.bad_signatures = 0
        self.deliveries = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                header = self.headers.get("X-CCTelegram-Signature", "")
                if not verify_signature(receiver.secret, header, body):
                    receiver.bad_signatures += 1
                receiver.deliveries += 1
                receiver.arrived.setdefault(self.path, at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def run(rounds: int) -> None:
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as data_dir:
        suite = start_suite(Path(data_dir), CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
        try:
            webhook_ms: list[float] = []
            poll_ms: list[float] = []
            base = suite.mcp_url.removesuffix("/mcp")
            async with (
                httpx.AsyncClient(
                    base_url=base,
                    headers={"Authorization": f"Bearer {suite.api_key}"},
                    timeout=httpx.Timeout(10, read=150),
                ) as api,
                httpx.AsyncClient(base_url=suite.sandbox_url, timeout=10) as sandbox,
            ):
                key_id = suite.api_key.split("_")[1]
                made = await api.post(f"/v1/keys/{key_id}/webhook-secret")
                made.raise_for_status()
                receiver.secret = made.json()["webhook_secret"]
                for number in range(rounds + 3):  # the first three warm up
                    title = f"Bench webhook {number}"
                    path = f"/hook/{number}"
                    created = await api.post(
                        "/v1/approvals",
                        json={
                            "title": title,
                            "description": "bench",
                            "options": ["Approve", "Reject"],
                            "callback_url": f"http://127.0.0.1:{receiver.port}{path}",
                        },
                    )
                    created.raise_for_status()
                    approval_id = created.json()["approval_id"]
                    card = await find_card(sandbox, title)
                    polling = asyncio.ensure_future(
                        api.get(f"/v1/approvals/{approval_id}", params={"wait": 60})
                    )
                    await asyncio.sleep(0.05)
                    pressed = time.perf_counter()
                    await sandbox.post(
                        f"/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
                        json={"user_id": DEMO_USER_ID, "text": "Approve"},
                    )
                    answer = await polling
                    answered = time.perf_counter()
                    assert answer.json()["status"] == "approved", answer.text
                    for _ in range(2000):
                        if path in receiver.arrived:
                            break
                        await asyncio.sleep(0.005)
                    else:
                        raise RuntimeError(f"webhook {path} never arrived")
                    if number >= 3:
                        poll_ms.append(1000 * (answered - pressed))
                        webhook_ms.append(1000 * (receiver.arrived[path] - pressed))
        finally:
            suite.stop()
            receiver.close()
    for name, values in (("long-poll", poll_ms), ("webhook", webhook_ms)):
        print(
            f"{name:9} press → answer over {len(values)} rounds: "
            f"p50 {percentile(values, 0.5):.0f} ms · p90 {percentile(values, 0.9):.0f} ms · "
            f"p99 {percentile(values, 0.99):.0f} ms · max {max(values):.0f} ms"
        )
    print(f"deliveries {receiver.deliveries}, bad signatures {receiver.bad_signatures}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
