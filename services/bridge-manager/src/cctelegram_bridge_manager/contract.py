"""What bridge-manager does on NATS: the one declaration its subscriptions and the AsyncAPI
document are made from (see ``cctelegram_common.messaging``)."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.audit import AUDIT_TRAIL
from cctelegram_common.contracts.bridge import (
    BridgeControl,
    BridgeControlRequest,
    BridgeControlResult,
    BridgeStatus,
    BridgeStatusRequest,
    EnsureBridgeResult,
    ProcessCheck,
)
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_common.messaging import Publish, Rpc, ServiceContract, Watch

CONTROL = "a bridge control (needs bridge:control; audited)"

CONTRACT = ServiceContract(
    service="bridge-manager",
    # Named after the service (docs/DEVELOPING.md); any replica answers.
    rpc_queue="bridge-manager",
    rpcs=(
        Rpc(
            subjects.BRIDGE_RPC_STATUS,
            BridgeStatusRequest,
            BridgeStatus,
            ("gateway", "events"),
            "get_bridge_status and /bridge: the fleet's state, figures and health reasons.",
        ),
        Rpc(
            subjects.BRIDGE_RPC_CHECK_PROCESS,
            BridgeStatusRequest,
            ProcessCheck,
            ("gateway",),
            "check_bridge_process: is at least one notifier alive, and which.",
        ),
        Rpc(
            subjects.BRIDGE_RPC_START,
            BridgeControlRequest,
            BridgeControlResult,
            ("gateway",),
            f"start_bridge: {CONTROL}.",
        ),
        Rpc(
            subjects.BRIDGE_RPC_STOP,
            BridgeControlRequest,
            BridgeControlResult,
            ("gateway",),
            f"stop_bridge: {CONTROL}.",
        ),
        Rpc(
            subjects.BRIDGE_RPC_RESTART,
            BridgeControlRequest,
            BridgeControlResult,
            ("gateway", "events"),
            f"restart_bridge and /restart: {CONTROL}.",
        ),
        Rpc(
            subjects.BRIDGE_RPC_ENSURE,
            BridgeControlRequest,
            EnsureBridgeResult,
            ("gateway",),
            "ensure_bridge_running: resume, and in supervised mode start a notifier.",
        ),
    ),
    watches=(
        Watch(
            subjects.DELIVERIES_ALL,
            "The last minute of delivery reports (the fleet's sent/failed figures).",
            DeliveryReported,
        ),
    ),
    publishes=(
        AUDIT_TRAIL,
        Publish(
            subjects.BRIDGE_CONTROL,
            BridgeControl,
            "broadcast",
            "Pause / resume / restart every notifier instance (core NATS).",
        ),
    ),
)
