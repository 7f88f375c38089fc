"""NATS adapters of bridge-manager: decode the RPC, ask the monitor or controller, reply."""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from pydantic import BaseModel

from cctelegram_bridge_manager.control import BridgeController
from cctelegram_bridge_manager.monitor import FleetMonitor
from cctelegram_bridge_manager.status import process_check
from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import BridgeControlRequest, BridgeStatusRequest
from cctelegram_common.contracts.rpc import RpcError, RpcReply
from cctelegram_common.nats import RpcResponder, current_message

QUEUE = "bridge-manager"


class NotReadyError(RuntimeError):
    """A request arrived before NATS-side state (KV handles, consumer) was opened."""


class Runtime:
    """What the handlers need, filled in once NATS is connected."""

    monitor: FleetMonitor | None = None
    controller: BridgeController | None = None

    def need_monitor(self) -> FleetMonitor:
        if self.monitor is None:
            raise NotReadyError
        return self.monitor

    def need_controller(self) -> BridgeController:
        if self.controller is None:
            raise NotReadyError
        return self.controller


def _refusal(error: Exception) -> RpcError | None:
    if isinstance(error, NotReadyError):
        return RpcError(code="unavailable", message="bridge-manager is still connecting to NATS")
    return None


_answer = RpcResponder(
    refusal=_refusal,
    internal_message=lambda _method, error: (
        f"bridge-manager could not do this: {type(error).__name__}"
    ),
).request


def register(broker: NatsBroker, runtime: Runtime) -> None:
    """One subscriber per RPC, in the ``bridge-manager`` queue group (any replica answers)."""

    async def status(_request: BridgeStatusRequest) -> BaseModel:
        return await runtime.need_monitor().status()

    async def check_process(_request: BridgeStatusRequest) -> BaseModel:
        return process_check(await runtime.need_monitor().status())

    async def start(request: BridgeControlRequest) -> BaseModel:
        return await runtime.need_controller().start(request)

    async def stop(request: BridgeControlRequest) -> BaseModel:
        return await runtime.need_controller().stop(request)

    async def restart(request: BridgeControlRequest) -> BaseModel:
        return await runtime.need_controller().restart(request)

    async def ensure(request: BridgeControlRequest) -> BaseModel:
        return await runtime.need_controller().ensure(request)

    @broker.subscriber(subjects.BRIDGE_RPC_STATUS, queue=QUEUE)
    async def on_status(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeStatusRequest, status)

    @broker.subscriber(subjects.BRIDGE_RPC_CHECK_PROCESS, queue=QUEUE)
    async def on_check_process(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeStatusRequest, check_process)

    @broker.subscriber(subjects.BRIDGE_RPC_START, queue=QUEUE)
    async def on_start(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeControlRequest, start)

    @broker.subscriber(subjects.BRIDGE_RPC_STOP, queue=QUEUE)
    async def on_stop(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeControlRequest, stop)

    @broker.subscriber(subjects.BRIDGE_RPC_RESTART, queue=QUEUE)
    async def on_restart(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeControlRequest, restart)

    @broker.subscriber(subjects.BRIDGE_RPC_ENSURE, queue=QUEUE)
    async def on_ensure(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await _answer(message.body, BridgeControlRequest, ensure)
