"""Helpers for tests and benchmarks that drive a notifier: publish to the outbox, read
streams back, wait for conditions, run the notifier as a real process."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats.js.errors
from nats.aio.client import Client

from cctelegram_cli.natsserver import free_port
from cctelegram_common import subjects
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.outbox import OutboxMessage
from cctelegram_common.processes import ChildProcess, Output, ProcessSpec

ContractT = TypeVar("ContractT", bound=Contract)


async def publish_outbox(nc: Client, message: OutboxMessage) -> None:
    await nc.jetstream().publish(
        subjects.outbox_subject(message.chat_id, message.bot),
        message.model_dump_json().encode(),
        headers={subjects.HEADER_MSG_ID: message.outbox_id},
        stream=subjects.STREAM_OUTBOX,
    )


async def stream_contracts(nc: Client, stream: str, model: type[ContractT]) -> list[ContractT]:
    """Every message stored in a (small) stream, oldest first, parsed as ``model``."""
    return [model.model_validate_json(payload) for payload in await stream_payloads(nc, stream)]


async def stream_payloads(nc: Client, stream: str) -> list[bytes]:
    """Every message stored in a (small) stream, oldest first."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    payloads = []
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            message = await js.get_msg(stream, sequence)
        except nats.js.errors.NotFoundError:
            continue
        payloads.append(message.data or b"")
    return payloads


async def wait_until(predicate: Any, timeout_s: float = 20.0, interval_s: float = 0.05) -> None:
    """Poll an (async or plain) predicate until true; fail the test after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval_s)


def sandbox_calls(sandbox: Any, method: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's calls log (``RunningSandbox.api``), optionally one method only."""
    calls: list[dict[str, Any]] = sandbox.api("GET", "/calls")
    if method is None:
        return calls
    return [call for call in calls if str(call["method"]).lower() == method.lower()]


def sandbox_messages(sandbox: Any, chat_id: int) -> list[dict[str, Any]]:
    """Messages in one sandbox chat; none when the chat does not exist (yet)."""
    try:
        messages: list[dict[str, Any]] = sandbox.api("GET", f"/chats/{chat_id}/messages")
    except httpx.HTTPStatusError as error:
        if error.response.status_code == 404:
            return []
        raise
    return messages


class NotifierProcess:
    """``python -m cctelegram_notifier`` with the given environment, on a free HTTP port."""

    def __init__(self, env: Mapping[str, str], *, log_path: str | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "NOTIFIER_HTTP__PORT": str(self.port),
            "NOTIFIER_LOG__LEVEL": "WARNING",
            "NOTIFIER_TELEMETRY__ENABLED": "false",
            **env,
        }
        self.log_path = log_path
        self.process: ChildProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NotifierProcess:
        self.process = ProcessSpec(
            [sys.executable, "-m", "cctelegram_notifier"],
            env=self.env,
            stdout=Path(self.log_path) if self.log_path else Output.DISCARD,
            new_session=True,
        ).start()
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and not self.process.alive:
                raise RuntimeError(f"notifier exited with {self.process.exit_code}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("notifier did not become ready")

    def kill(self) -> None:
        """``kill -9``."""
        if self.process is not None:
            self.process.kill()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time; returns the exit code."""
        if self.process is None:
            return None
        return self.process.stop(timeout_s)
