"""The bridge-manager tests' hands on NATS: a client with helpers to play the fleet's part, and
the fixtures built on it (``conftest.py`` registers them; tests/integration/ reuses them)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.kv import KeyValue
from pydantic import BaseModel

from cctelegram_common import streams, subjects
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.bridge import (
    BridgeControl,
    CircuitState,
    NotifierHeartbeat,
)
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_testing.nats import free_port_block
from cctelegram_testing.notifier import publish_outbox
from cctelegram_testing.processes import ServiceProcess

ModelT = TypeVar("ModelT", bound=BaseModel)


class Fleet:
    """A test's hands on NATS: RPCs to bridge-manager, fake heartbeats, outbox messages."""

    def __init__(self, nc: nats.NATS, kv: KeyValue) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.kv = kv
        self.controls: asyncio.Queue[BridgeControl] = asyncio.Queue()

    async def listen_to_controls(self) -> None:
        async def on_control(msg: Msg) -> None:
            await self.controls.put(BridgeControl.model_validate_json(msg.data))

        await self.nc.subscribe(subjects.BRIDGE_CONTROL, cb=on_control)

    async def rpc(
        self, subject: str, request: BaseModel, answer: type[ModelT], timeout_s: float = 30
    ) -> ModelT:
        message = await self.nc.request(
            subject, request.model_dump_json().encode(), timeout=timeout_s
        )
        reply = RpcReply.model_validate_json(message.data)
        assert reply.ok, reply.error
        return answer.model_validate(reply.result)

    async def raw_rpc(self, subject: str, body: bytes) -> RpcReply:
        message = await self.nc.request(subject, body, timeout=10)
        return RpcReply.model_validate_json(message.data)

    async def beat(self, instance_id: str, age_s: float = 0.0, **changes: Any) -> None:
        """Write a heartbeat as a notifier would (``age_s`` back-dates it)."""
        now = utc_now()
        fields: dict[str, Any] = {
            "instance_id": instance_id,
            "host": "elsewhere",
            "pid": 4242,
            "version": "test",
            "started_at": now - timedelta(seconds=60),
            "paused": False,
            "poller": True,
            "in_flight": 0,
            "sent_count": 3,
            "failed_count": 0,
            "circuit_state": CircuitState.CLOSED,
            "beat_at": now - timedelta(seconds=age_s),
        }
        fields.update(changes)
        beat = NotifierHeartbeat.model_validate(fields)
        await self.kv.put(
            subjects.bridge_instance_key(instance_id), beat.model_dump_json().encode()
        )

    async def enqueue(self, count: int, chat_id: int, prefix: str) -> list[str]:
        """Store ``count`` outbox messages for one chat (as the events service would)."""
        ids = []
        for number in range(count):
            outbox_id = f"{prefix}-{number:04d}"
            message = OutboxMessage(
                outbox_id=outbox_id,
                operation=Operation.SEND_MESSAGE,
                chat_id=chat_id,
                text=outbox_id,
                parse_mode=None,
            )
            await publish_outbox(self.nc, message)
            ids.append(outbox_id)
        return ids

    async def desired(self) -> dict[str, Any]:
        entry = await self.kv.get(subjects.BRIDGE_KEY_DESIRED)
        assert entry.value is not None
        value: dict[str, Any] = json.loads(entry.value)
        return value

    async def last_audit(self, action: str) -> dict[str, Any]:
        message = await self.js.get_last_msg(
            subjects.STREAM_AUDIT, subjects.audit_subject("bridge-manager", action)
        )
        record: dict[str, Any] = json.loads(message.data)
        return record


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    accept: Callable[[Any], bool],
    timeout_s: float = 30.0,
    interval_s: float = 0.2,
) -> Any:
    """Poll ``probe`` until ``accept`` likes the answer (bounded); return that answer."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if accept(last):
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met in {timeout_s}s; last answer: {last!r}")


@pytest.fixture
def poll() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture
async def fleet(fresh_nats: Any) -> AsyncIterator[Fleet]:
    """A client of a NATS server of this test's own, with the suite's streams provisioned."""
    nc = await nats.connect(fresh_nats.url)
    try:
        js = nc.jetstream()
        await streams.provision(js)
        fleet = Fleet(nc, await js.key_value(subjects.KV_BRIDGE))
        await fleet.listen_to_controls()
        yield fleet
    finally:
        await nc.close()


@pytest.fixture
def port_block() -> Callable[[int], int]:
    return free_port_block


@pytest.fixture
def bridge_manager(fresh_nats: Any, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The real bridge-manager process (cluster mode) on this test's own NATS."""
    env = {
        "NATS_URL": fresh_nats.url,
        "BRIDGE_MANAGER_HEALTH__HEARTBEAT_TTL_S": "3",
        "BRIDGE_MANAGER_SAMPLE_INTERVAL_S": "0.5",
        "BRIDGE_MANAGER_TELEMETRY__ENABLED": "false",
    }
    process = ServiceProcess(
        "cctelegram_bridge_manager", "BRIDGE_MANAGER_", env, tmp_path / "bm.log"
    )
    process.start()
    try:
        yield process
    finally:
        assert process.stop() == 0, process.tail(20)
