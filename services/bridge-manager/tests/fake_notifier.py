"""A stand-in notifier process for supervisor tests: beats, answers /health/ready, obeys SIGTERM.

Run as ``python -m fake_notifier`` with this folder on PYTHONPATH and the env a supervised
notifier gets (NOTIFIER_INSTANCE_ID, NOTIFIER_HTTP__PORT, NOTIFIER_NATS__URLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from datetime import UTC, datetime

import nats

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import CircuitState, NotifierHeartbeat


async def serve_ready(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readline()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


async def main() -> None:
    instance_id = os.environ["NOTIFIER_INSTANCE_ID"]
    port = int(os.environ["NOTIFIER_HTTP__PORT"])
    urls = json.loads(os.environ["NOTIFIER_NATS__URLS"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    nc = await nats.connect(urls)
    kv = await nc.jetstream().key_value(subjects.KV_BRIDGE)
    started = datetime.now(UTC)
    server = await asyncio.start_server(serve_ready, "127.0.0.1", port)
    while not stop.is_set():
        beat = NotifierHeartbeat(
            instance_id=instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version="fake",
            started_at=started,
            paused=False,
            poller=False,
            in_flight=0,
            sent_count=0,
            failed_count=0,
            circuit_state=CircuitState.CLOSED,
        )
        await kv.put(subjects.bridge_instance_key(instance_id), beat.model_dump_json().encode())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    server.close()
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
