"""NATS adapters of bridge-manager: the contract's RPCs served by the monitor and controller."""

from __future__ import annotations

from cctelegram_bridge_manager.control import BridgeController
from cctelegram_bridge_manager.monitor import FleetMonitor
from cctelegram_bridge_manager.status import process_check
from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import BridgeStatus, BridgeStatusRequest, ProcessCheck
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import RpcResponder


def bindings(monitor: FleetMonitor, controller: BridgeController) -> Bindings:
    """Every RPC of bridge-manager's contract, over a monitor and controller already open."""

    async def check_process(_request: BridgeStatusRequest) -> ProcessCheck:
        return process_check(await monitor.status())

    async def status(_request: BridgeStatusRequest) -> BridgeStatus:
        return await monitor.status()

    return Bindings(
        responder=RpcResponder(
            internal_message=lambda _method, error: (
                f"bridge-manager could not do this: {type(error).__name__}"
            ),
        ),
        rpcs={
            subjects.BRIDGE_RPC_STATUS: status,
            subjects.BRIDGE_RPC_CHECK_PROCESS: check_process,
            subjects.BRIDGE_RPC_START: controller.start,
            subjects.BRIDGE_RPC_STOP: controller.stop,
            subjects.BRIDGE_RPC_RESTART: controller.restart,
            subjects.BRIDGE_RPC_ENSURE: controller.ensure,
        },
    )
