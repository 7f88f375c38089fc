"""Bridge tools: the delivery fleet's status and controls, as RPCs to bridge-manager."""

from __future__ import annotations

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.bridge import (
    BridgeControlRequest,
    BridgeControlResult,
    BridgeStatus,
    BridgeStatusRequest,
    EnsureBridgeResult,
    ProcessCheck,
)
from cctelegram_common.contracts.tools import NoInput
from cctelegram_common.nats import ModelT, RpcFailedError, rpc_call
from cctelegram_gateway.registry import ToolContext, ToolError, registry

STATUS_TIMEOUT_S = 5.0
# A supervised restart stops each notifier gracefully and waits for its replacement.
CONTROL_TIMEOUT_S = 60.0


async def _call(
    ctx: ToolContext, subject: str, request: BaseModel, answer: type[ModelT], timeout_s: float
) -> ModelT:
    try:
        return await rpc_call(ctx.broker, subject, request, answer, timeout_s=timeout_s)
    except RpcFailedError as failure:
        error = failure.error
        not_answering = "bridge-manager is not answering; is it running?"
        raise ToolError.from_rpc(
            error, message=not_answering if error.code == "unavailable" else None
        ) from None


async def _ask(ctx: ToolContext, subject: str, answer: type[ModelT]) -> ModelT:
    request = BridgeStatusRequest(requested_by=ctx.principal.client_id, request_id=ctx.request_id)
    return await _call(ctx, subject, request, answer, STATUS_TIMEOUT_S)


async def _control(ctx: ToolContext, subject: str, answer: type[ModelT]) -> ModelT:
    request = BridgeControlRequest(
        requested_by=ctx.principal.client_id, request_id=ctx.request_id, via="gateway"
    )
    return await _call(ctx, subject, request, answer, CONTROL_TIMEOUT_S)


@registry.tool(
    "get_bridge_status",
    description=(
        "Status of the Telegram bridge (the notifier fleet): running, health pass/warn/fail "
        "with reasons, metrics, queue depth, delivery rate, live instances, Telegram reachability."
    ),
    permission=Permission.BRIDGE_READ,
    read_only=True,
)
async def get_bridge_status(ctx: ToolContext, _params: NoInput) -> BridgeStatus:
    return await _ask(ctx, subjects.BRIDGE_RPC_STATUS, BridgeStatus)


@registry.tool(
    "check_bridge_process",
    description="Whether at least one notifier instance is alive (fresh heartbeat), and which.",
    permission=Permission.BRIDGE_READ,
    read_only=True,
)
async def check_bridge_process(ctx: ToolContext, _params: NoInput) -> ProcessCheck:
    return await _ask(ctx, subjects.BRIDGE_RPC_CHECK_PROCESS, ProcessCheck)


@registry.tool(
    "start_bridge",
    description="Resume delivery to Telegram (and start the notifier processes when supervised).",
    permission=Permission.BRIDGE_CONTROL,
)
async def start_bridge(ctx: ToolContext, _params: NoInput) -> BridgeControlResult:
    return await _control(ctx, subjects.BRIDGE_RPC_START, BridgeControlResult)


@registry.tool(
    "stop_bridge",
    description=(
        "Pause delivery to Telegram. Nothing is lost: messages wait in the outbox; the answer "
        "says how many are waiting. start_bridge resumes."
    ),
    permission=Permission.BRIDGE_CONTROL,
)
async def stop_bridge(ctx: ToolContext, _params: NoInput) -> BridgeControlResult:
    return await _control(ctx, subjects.BRIDGE_RPC_STOP, BridgeControlResult)


@registry.tool(
    "restart_bridge",
    description=(
        "Restart the bridge: every notifier finishes in-flight sends, resets its circuit "
        "breaker and reconnects. No message is lost or sent twice."
    ),
    permission=Permission.BRIDGE_CONTROL,
)
async def restart_bridge(ctx: ToolContext, _params: NoInput) -> BridgeControlResult:
    return await _control(ctx, subjects.BRIDGE_RPC_RESTART, BridgeControlResult)


@registry.tool(
    "ensure_bridge_running",
    description=(
        "Make sure the bridge delivers: resume a paused fleet and, when supervised, start a "
        "notifier if none is alive. action: already_running / started / failed."
    ),
    permission=Permission.BRIDGE_CONTROL,
)
async def ensure_bridge_running(ctx: ToolContext, _params: NoInput) -> EnsureBridgeResult:
    return await _control(ctx, subjects.BRIDGE_RPC_ENSURE, EnsureBridgeResult)


@registry.resource(
    "cctelegram://bridge-status",
    name="bridge-status",
    description="The bridge's status, as get_bridge_status returns it.",
    permission=Permission.BRIDGE_READ,
)
async def bridge_status_resource(ctx: ToolContext) -> BridgeStatus:
    return await _ask(ctx, subjects.BRIDGE_RPC_STATUS, BridgeStatus)
