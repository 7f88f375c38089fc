"""Notification tools: the original's send_* tools, list_event_types, get_event_status."""

from __future__ import annotations

import uuid
from typing import TypeVar

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.event_types import CATEGORY_OF, EventType, describe
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_common.contracts.tools import (
    EventStatusView,
    EventTypeInfo,
    EventTypeList,
    GetEventStatusInput,
    ListEventTypesInput,
    SendEventInput,
    SendMessageInput,
    SendPerformanceAlertInput,
    SendResult,
    SendTaskCompletionInput,
)
from cctelegram_common.nats import RpcFailedError, jetstream, publish_to_stream, rpc_call
from cctelegram_gateway.registry import ToolContext, ToolError, registry

# Ids derived from (client, idempotency key) live in this namespace, so the same key of the
# same client maps to the same id on every replica, forever.
ID_NAMESPACE = uuid.UUID("6f1f8a4e-9a51-4c3e-8d0c-6c7e1e2b9a01")


def derive_id(client_id: str, idempotency_key: str | None, kind: str = "event") -> str:
    """A fresh random id, or a deterministic one when the caller gave an idempotency key."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(ID_NAMESPACE, f"{kind}\x00{client_id}\x00{idempotency_key}").hex


def may_read(ctx: ToolContext, owner: str) -> bool:
    """Callers see their own records; a read-all role sees everyone's."""
    return owner == ctx.principal.client_id or ctx.principal.can(Permission.READ_ALL)


async def publish_command(ctx: ToolContext, subject: str, payload: BaseModel, msg_id: str) -> None:
    """JetStream publish with Nats-Msg-Id; returns only after the PubAck (the command is stored)."""
    try:
        await publish_to_stream(
            jetstream(ctx.broker),
            subject,
            payload,
            msg_id=msg_id,
            stream=subjects.STREAM_EVENTS,
            request_id=ctx.request_id,
        )
    except Exception as error:
        raise ToolError(
            f"could not store the request ({type(error).__name__}); retry with the same "
            "idempotency_key",
            code="unavailable",
        ) from None


ModelT = TypeVar("ModelT", bound=BaseModel)


async def call_events(
    ctx: ToolContext,
    subject: str,
    request: BaseModel,
    response_model: type[ModelT],
    *,
    field: str | None = None,
    timeout_s: float = 10.0,
) -> ModelT:
    """An RPC to the events service; its refusals become caller-facing tool errors."""
    try:
        return await rpc_call(ctx.broker, subject, request, response_model, timeout_s=timeout_s)
    except RpcFailedError as error:
        raise ToolError.from_rpc(
            error.error, field=field if error.error.code == "not_found" else None
        ) from None


async def submit(ctx: ToolContext, event: SubmitEvent, what: str) -> SendResult:
    await publish_command(ctx, subjects.EVENT_SUBMIT, event, event.event_id)
    return SendResult(success=True, event_id=event.event_id, message=f"{what} queued for Telegram")


@registry.tool(
    "send_telegram_event",
    description="Send a structured event (any of the 48 types) to the allowed Telegram users. "
    "Returns once the event is stored; use get_event_status to see delivery.",
    permission=Permission.EVENTS_SEND,
)
async def send_telegram_event(ctx: ToolContext, params: SendEventInput) -> SendResult:
    event_id = derive_id(ctx.principal.client_id, params.idempotency_key)
    event = SubmitEvent(
        event_id=event_id,
        type=params.type,
        title=params.title,
        description=params.description,
        task_id=params.task_id or f"task-{event_id[:12]}",
        source=params.source,
        data=params.data,
        client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
    )
    return await submit(ctx, event, "Event")


@registry.tool(
    "send_telegram_message",
    description="Send a plain text message (an info_notification) to the allowed Telegram users.",
    permission=Permission.EVENTS_SEND,
)
async def send_telegram_message(ctx: ToolContext, params: SendMessageInput) -> SendResult:
    event_id = derive_id(ctx.principal.client_id, params.idempotency_key)
    # The first line is the headline when it is short enough; the rest is the body.
    lines = params.message.strip().splitlines() or [params.message]
    if 0 < len(lines[0].strip()) <= 200:
        title, body = lines[0].strip(), "\n".join(lines[1:]).strip()
    else:
        title, body = f"Message from {params.source}"[:200], params.message
    event = SubmitEvent(
        event_id=event_id,
        type=EventType.INFO_NOTIFICATION,
        title=title,
        description=body,
        source=params.source,
        client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
    )
    return await submit(ctx, event, "Message")


@registry.tool(
    "send_task_completion",
    description="Report a finished task with its results, files affected and duration.",
    permission=Permission.EVENTS_SEND,
)
async def send_task_completion(ctx: ToolContext, params: SendTaskCompletionInput) -> SendResult:
    event_id = derive_id(ctx.principal.client_id, params.idempotency_key)
    data: dict[str, object] = {"status": "completed"}
    if params.results:
        data["results"] = params.results
    if params.files_affected:
        data["files_affected"] = params.files_affected
    if params.duration_ms is not None:
        data["duration_ms"] = params.duration_ms
    event = SubmitEvent(
        event_id=event_id,
        type=EventType.TASK_COMPLETION,
        title=params.title,
        description=params.results or "",
        task_id=params.task_id,
        data=data,
        client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
    )
    return await submit(ctx, event, "Task completion")


@registry.tool(
    "send_performance_alert",
    description="Alert that a measured value crossed its threshold (severity low..critical).",
    permission=Permission.EVENTS_SEND,
)
async def send_performance_alert(ctx: ToolContext, params: SendPerformanceAlertInput) -> SendResult:
    event_id = derive_id(ctx.principal.client_id, params.idempotency_key)
    event = SubmitEvent(
        event_id=event_id,
        type=EventType.PERFORMANCE_ALERT,
        title=params.title,
        description=f"Current value {params.current_value:g} crossed the threshold "
        f"{params.threshold:g}.",
        data={
            "current_value": params.current_value,
            "threshold": params.threshold,
            "severity": params.severity.value,
        },
        severity=Severity(params.severity),
        client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
    )
    return await submit(ctx, event, "Performance alert")


@registry.tool(
    "list_event_types",
    description="List the event types send_telegram_event accepts, optionally by category.",
    permission=Permission.EVENTS_READ,
    read_only=True,
)
async def list_event_types(_ctx: ToolContext, params: ListEventTypesInput) -> EventTypeList:
    wanted = (params.category or "").lower()
    rows = [
        EventTypeInfo(
            type=event_type, category=CATEGORY_OF[event_type], description=describe(event_type)
        )
        for event_type in EventType
        if wanted in CATEGORY_OF[event_type].lower()
    ]
    return EventTypeList(count=len(rows), event_types=rows)


@registry.tool(
    "get_event_status",
    description="Delivery state of an event you sent: queued / sent / failed (with Telegram "
    "message ids and the last error).",
    permission=Permission.EVENTS_READ,
    read_only=True,
)
async def get_event_status(ctx: ToolContext, params: GetEventStatusInput) -> EventStatusView:
    not_found = ToolError(f"no event {params.event_id}", code="not_found", field="event_id")
    status = await ctx.reads.event_status(params.event_id)
    if status is None:
        raise not_found
    if not may_read(ctx, status.client_id):
        raise not_found
    return EventStatusView(
        event_id=status.event_id,
        state=status.state,
        type=status.type,
        telegram_message_ids=list(status.telegram_message_ids),
        chat_ids=list(status.chat_ids),
        last_error=status.last_error,
        submitted_at=status.submitted_at,
        updated_at=status.updated_at,
    )


@registry.resource(
    "cctelegram://event-types",
    name="event-types",
    description="Every event type with its category and description",
    permission=Permission.EVENTS_READ,
)
async def event_types_resource(ctx: ToolContext) -> EventTypeList:
    return await list_event_types(ctx, ListEventTypesInput())
