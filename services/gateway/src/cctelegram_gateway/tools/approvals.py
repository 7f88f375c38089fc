"""Approval tools: send_approval_request, wait_for_approval, get_approval, cancel_approval.

Waiting watches the approval's entry in the ``cctg_approvals`` KV, so it works on any
gateway replica and after a restart: the state lives in NATS, not in this process.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ON_TIMEOUT_EXPIRE,
    ApprovalRecord,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.tools import (
    ApprovalIdInput,
    ApprovalView,
    CancelApprovalInput,
    SendApprovalRequestInput,
    SendApprovalResult,
    WaitForApprovalInput,
    WaitForApprovalResult,
    approval_view,
)
from cctelegram_common.webhooks import AllowList, DestinationRefusedError, check_callback_url
from cctelegram_gateway.registry import ToolContext, ToolError, current_progress, registry
from cctelegram_gateway.tools.events import (
    call_events,
    derive_id,
    may_read,
    publish_command,
)

# How long a just-sent approval may take to appear (the events service creates it).
APPEAR_GRACE_S = 5.0
# How often a long wait tells a client that asked for progress that it is still waiting.
KEEPALIVE_S = 15.0


@functools.cache
def webhook_allow_list() -> AllowList:
    """CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS, read once: the URL is refused here, as written,
    before anything is stored (the sender checks the resolved addresses again)."""
    return AllowList.from_env()


def view(record: ApprovalRecord) -> ApprovalView:
    return approval_view(record)


def _not_found(approval_id: str) -> ToolError:
    # A decided approval is removed by NATS after the history time (CCTG_HISTORY_DAYS, 30 days
    # by default); nothing remembers that it was there, so the answer names every reason.
    return ToolError(
        f"no approval {approval_id}: it left the history (decided approvals are kept for "
        "the configured history time, 30 days by default, then removed), or it never "
        "existed or is not yours",
        code="not_found",
        field="approval_id",
    )


async def watch_approval(
    ctx: ToolContext, approval_id: str, timeout_s: float, until_closed: bool = True
) -> ApprovalRecord:
    """The approval once it is closed (or, with ``until_closed=False``, once it exists), or
    as it stands when ``timeout_s`` runs out. Reports progress while it waits when the
    caller asked for it (``current_progress``)."""
    progress = current_progress.get()
    if progress is None:
        return await _watch(ctx, approval_id, timeout_s, until_closed)
    watching = asyncio.ensure_future(_watch(ctx, approval_id, timeout_s, until_closed))
    try:
        while True:
            done, _pending = await asyncio.wait({watching}, timeout=KEEPALIVE_S)
            if done:
                return watching.result()
            await progress("Waiting for a person on Telegram")
    finally:
        watching.cancel()


async def _watch(
    ctx: ToolContext, approval_id: str, timeout_s: float, until_closed: bool
) -> ApprovalRecord:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    appear_deadline = loop.time() + min(timeout_s, APPEAR_GRACE_S)
    watch = await ctx.reads.watch_approval(approval_id)
    if watch is None:
        raise _not_found(approval_id)
    latest: ApprovalRecord | None = None
    try:
        while True:
            until = deadline if latest is not None else min(deadline, appear_deadline)
            remaining = until - loop.time()
            if remaining <= 0:
                break
            record = await watch.next(remaining)
            if record is None:
                continue  # nothing new yet, the "no more history" marker, or a purge
            if not may_read(ctx, record.client_id):
                raise _not_found(approval_id)
            latest = record
            if not record.is_open or not until_closed:
                return record
    finally:
        await watch.stop()
    if latest is None:
        raise _not_found(approval_id)
    return latest


@registry.tool(
    "send_approval_request",
    description="Ask the approvers on Telegram to decide; one button per option. Returns the "
    "approval_id at once (wait_seconds=0) or waits for the decision up to wait_seconds.",
    permission=Permission.APPROVALS_REQUEST,
    streams=True,
)
async def send_approval_request(
    ctx: ToolContext, params: SendApprovalRequestInput
) -> SendApprovalResult:
    options = [option.strip() for option in params.options]
    for index, option in enumerate(options):
        if not option or len(option) > 100:
            raise ToolError(
                f"option {index + 1} must be 1-100 characters", field=f"options.{index}"
            )
    if len(set(options)) != len(options):
        raise ToolError("options must be different from each other", field="options")
    if params.on_timeout != ON_TIMEOUT_EXPIRE and params.on_timeout not in options:
        raise ToolError("on_timeout must be 'expire' or one of the options", field="on_timeout")
    if params.callback_url is not None:
        try:
            check_callback_url(params.callback_url, webhook_allow_list())
        except DestinationRefusedError as refused:
            raise ToolError(f"callback_url: {refused}", status=422, field="callback_url") from None
    approval_id = derive_id(ctx.principal.client_id, params.idempotency_key, "approval")
    now = utc_now()
    command = SubmitApproval(
        approval_id=approval_id,
        client_id=ctx.principal.client_id,
        title=params.title,
        description=params.description,
        options=tuple(options),
        approvers=tuple(params.approvers) if params.approvers is not None else None,
        expires_at=now + timedelta(minutes=params.expires_in_minutes),
        on_timeout=params.on_timeout,
        details=params.details,
        allow_text_reply=params.allow_text_reply,
        task_id=params.task_id,
        source=params.source,
        request_id=ctx.request_id,
        submitted_at=now,
        callback_url=params.callback_url,
    )
    await publish_command(ctx, subjects.APPROVAL_SUBMIT, command, approval_id)
    result = SendApprovalResult(
        success=True,
        event_id=approval_id,
        approval_id=approval_id,
        message="Approval request sent; call wait_for_approval to block until it is decided",
    )
    if params.wait_seconds <= 0:
        return result
    record = await watch_approval(ctx, approval_id, params.wait_seconds)
    return result.model_copy(
        update={
            "status": record.status,
            "approval": view(record),
            "message": "Decided" if not record.is_open else "Still pending; wait again",
        }
    )


@registry.tool(
    "wait_for_approval",
    description="Block until the approval is decided, expired or cancelled, or timeout_seconds "
    "(default 50, max 120) pass; then status is still 'pending' and you can call again.",
    permission=Permission.APPROVALS_READ,
    read_only=True,
    streams=True,
)
async def wait_for_approval(
    ctx: ToolContext, params: WaitForApprovalInput
) -> WaitForApprovalResult:
    record = await watch_approval(ctx, params.approval_id, params.timeout_seconds)
    return WaitForApprovalResult(
        approval=view(record), status=record.status, timed_out=record.is_open
    )


@registry.tool(
    "get_approval",
    description="The current state of one of your approvals (no waiting).",
    permission=Permission.APPROVALS_READ,
    read_only=True,
)
async def get_approval(ctx: ToolContext, params: ApprovalIdInput) -> ApprovalView:
    record = await ctx.reads.approval(params.approval_id)
    if record is None:
        # Just sent? The events service may still be creating it.
        return view(await watch_approval(ctx, params.approval_id, 2.0, until_closed=False))
    if not may_read(ctx, record.client_id):
        raise _not_found(params.approval_id)
    return view(record)


@registry.tool(
    "cancel_approval",
    description="Withdraw one of your open approvals; its card says so and loses its buttons.",
    permission=Permission.APPROVALS_REQUEST,
)
async def cancel_approval(ctx: ToolContext, params: CancelApprovalInput) -> ApprovalView:
    request = CancelApprovalRequest(
        approval_id=params.approval_id,
        client_id=ctx.principal.client_id,
        read_all=ctx.principal.can(Permission.READ_ALL),
        reason=params.reason,
    )
    record = await call_events(
        ctx, subjects.EVENTS_RPC_APPROVAL_CANCEL, request, ApprovalRecord, field="approval_id"
    )
    return view(record)
