"""The NATS contract as data: every subject, its payload model, who publishes and who consumes.

This is what ``make asyncapi`` turns into the AsyncAPI document; keep it in step with the
services (a test checks that every catalogued model is a Contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ApprovalRecord,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.auth import KeyChanged, VerifyRequest, VerifyResponse
from cctelegram_common.contracts.bridge import BridgeControl
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import ModeResult, SetModeRequest
from cctelegram_common.contracts.outbox import DeadLetter, DeliveryReported, OutboxMessage
from cctelegram_common.contracts.responses import (
    ClearedResponses,
    PendingResponses,
    ResponseRecord,
    ResponsesPage,
    ResponsesQuery,
)
from cctelegram_common.contracts.tasks import (
    RegisterTodosRequest,
    RegisterTodosResult,
    TaskStatusRequest,
    TaskStatusResult,
    TodoResult,
)
from cctelegram_common.contracts.tools import TemplateCatalogue, TemplatesRequest
from cctelegram_common.contracts.updates import InboundUpdate


@dataclass(frozen=True)
class Channel:
    subject: str
    payload: type[BaseModel]
    kind: str  # command | event | rpc | broadcast
    publishers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    stream: str | None = None
    reply: type[BaseModel] | None = None


CHANNELS: list[Channel] = [
    Channel(
        subjects.EVENT_SUBMIT,
        SubmitEvent,
        "command",
        ("gateway", "internal publishers"),
        ("events",),
        "Render and deliver one notification; Nats-Msg-Id = event_id.",
        subjects.STREAM_EVENTS,
    ),
    Channel(
        f"{subjects.OUTBOX_CHAT_PREFIX}.{{chat}}",
        OutboxMessage,
        "command",
        ("events",),
        ("notifier",),
        "One Telegram operation for one chat (work queue; per-chat order by subject).",
        subjects.STREAM_OUTBOX,
    ),
    Channel(
        subjects.DELIVERY_REPORTED,
        DeliveryReported,
        "event",
        ("notifier",),
        ("events", "bridge-manager"),
        "The notifier finished with one outbox message: sent or failed.",
        subjects.STREAM_DELIVERIES,
    ),
    Channel(
        subjects.DEAD_LETTER_OUTBOX,
        DeadLetter,
        "event",
        ("notifier",),
        ("bridge-manager", "operators"),
        "An outbox message that could not be delivered, with reason and attempts.",
        subjects.STREAM_DEAD_LETTER,
    ),
    Channel(
        subjects.TELEGRAM_UPDATES,
        InboundUpdate,
        "event",
        ("notifier", "gateway (webhook)"),
        ("events",),
        "Inbound Telegram updates; Nats-Msg-Id = tg-update-<update_id>.",
        subjects.STREAM_UPDATES,
    ),
    Channel(
        subjects.BRIDGE_CONTROL,
        BridgeControl,
        "broadcast",
        ("bridge-manager",),
        ("notifier",),
        "Pause / resume / restart every notifier instance (core NATS).",
    ),
    Channel(
        subjects.AUTH_KEY_CHANGED,
        KeyChanged,
        "broadcast",
        ("auth",),
        ("gateway",),
        "A key was revoked or changed: every gateway drops it from its cache.",
    ),
    Channel(
        subjects.AUTH_RPC_VERIFY,
        VerifyRequest,
        "rpc",
        ("gateway",),
        ("auth",),
        "Is this presented API key valid, and whose is it?",
        reply=VerifyResponse,
    ),
]


def _events_rpc(
    subject: str, request: type[BaseModel], reply: type[BaseModel], what: str
) -> Channel:
    return Channel(subject, request, "rpc", ("gateway",), ("events",), what, reply=reply)


# The events service: approvals, responses and its RPCs (answered in the `events` queue group).
CHANNELS += [
    Channel(
        subjects.APPROVAL_SUBMIT,
        SubmitApproval,
        "command",
        ("gateway", "internal publishers"),
        ("events",),
        "Show an approval card to the approvers; Nats-Msg-Id = approval_id.",
        subjects.STREAM_EVENTS,
    ),
    Channel(
        f"{subjects.PREFIX}.responses.{{kind}}",
        ResponseRecord,
        "event",
        ("events",),
        ("events",),
        "A press, text reply or command from an allowed user; Nats-Msg-Id = resp-<update_id>.",
        subjects.STREAM_RESPONSES,
    ),
    _events_rpc(
        subjects.EVENTS_RPC_RESPONSES_LIST,
        ResponsesQuery,
        ResponsesPage,
        "get_telegram_responses: the caller's responses, newest first.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_RESPONSES_PENDING,
        ResponsesQuery,
        PendingResponses,
        "process_pending_responses: decisions in the last since_minutes.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_RESPONSES_CLEAR,
        ResponsesQuery,
        ClearedResponses,
        "clear_old_responses: move the caller's cleared-before marker.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_APPROVAL_CANCEL,
        CancelApprovalRequest,
        ApprovalRecord,
        "cancel_approval: withdraw an open approval (owner or read-all).",
    ),
    _events_rpc(subjects.EVENTS_RPC_MODE_SET, SetModeRequest, ModeResult, "switch_to_*_mode."),
    _events_rpc(
        subjects.EVENTS_RPC_TODOS_REGISTER,
        RegisterTodosRequest,
        RegisterTodosResult,
        "register_claude_todos: replace a session's todos.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_TASK_STATUS,
        TaskStatusRequest,
        TaskStatusResult,
        "get_task_status: todos plus TaskMaster tasks.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_TODO, TaskStatusRequest, TodoResult, "todo: the formatted list."
    ),
    _events_rpc(
        subjects.EVENTS_RPC_TEMPLATES,
        TemplatesRequest,
        TemplateCatalogue,
        "cctelegram://event-templates: every event type's template.",
    ),
]
