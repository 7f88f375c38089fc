"""The NATS contract as data: every subject, its payload model, who publishes and who consumes.

This is what ``make asyncapi`` turns into the AsyncAPI document; keep it in step with the
services (a test checks that every catalogued model is a Contract).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ApprovalDue,
    ApprovalRecord,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyChanged,
    KeyInfo,
    KeyList,
    ListKeysRequest,
    RevokeKeyRequest,
    RotatedKey,
    RotateKeyRequest,
    VerifyRequest,
    VerifyResponse,
)
from cctelegram_common.contracts.bridge import (
    BridgeControl,
    BridgeControlRequest,
    BridgeControlResult,
    BridgeStatus,
    BridgeStatusRequest,
    EnsureBridgeResult,
    ProcessCheck,
)
from cctelegram_common.contracts.claude_code import (
    SessionCheckRequest,
    SessionCheckResult,
    SessionEndRequest,
    SessionRule,
    SessionRuleRequest,
)
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
from cctelegram_common.contracts.webhooks import (
    CreatedWebhookSecret,
    CreateWebhookSecretRequest,
    SignWebhookRequest,
    WebhookDeadLettered,
    WebhookDelivery,
    WebhookSignature,
)


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
        subjects.WEBHOOK_DELIVER,
        WebhookDelivery,
        "command",
        ("events",),
        ("events",),
        "POST an approval's final record to its callback_url, signed; retried on timeouts "
        "and 5xx for the retry window (an hour), then dead-lettered.",
        subjects.STREAM_WEBHOOKS,
    ),
    Channel(
        subjects.DEAD_LETTER_WEBHOOK,
        WebhookDeadLettered,
        "event",
        ("events",),
        ("operators",),
        "A decision webhook given up on: refused destination, 4xx, or failures past the window.",
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
        subjects.approval_due_subject("{approval_id}"),
        ApprovalDue,
        "command",
        ("events",),
        ("nats-server (message schedules)",),
        "The due-time index: the schedule of one open approval (Nats-Schedule: @at its "
        "expiry, target cctg.approvals.timeout.<approval_id>); replaced by an empty message "
        "with a 1 s TTL when the approval closes.",
        subjects.STREAM_APPROVAL_DUE,
    ),
    Channel(
        subjects.approval_timeout_subject("{approval_id}"),
        ApprovalDue,
        "event",
        ("nats-server (message schedules)",),
        ("events",),
        "An open approval fell due; one events replica applies its on_timeout rule.",
        subjects.STREAM_APPROVAL_DUE,
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
    _events_rpc(
        subjects.EVENTS_RPC_SESSION_CHECK,
        SessionCheckRequest,
        SessionCheckResult,
        "Claude Code: note a session's activity; does a session rule allow this tool use?",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_SESSION_RULE,
        SessionRuleRequest,
        SessionRule,
        "Claude Code: the rule a decided 'Allow for this session' approval stands for.",
    ),
    _events_rpc(
        subjects.EVENTS_RPC_SESSION_END,
        SessionEndRequest,
        SessionCheckResult,
        "Claude Code SessionEnd: the session's rules end with it.",
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


def _rpc(
    subject: str,
    request: type[BaseModel],
    reply: type[BaseModel],
    callers: tuple[str, ...],
    service: str,
    what: str,
) -> Channel:
    return Channel(subject, request, "rpc", callers, (service,), what, reply=reply)


# The bridge-manager's status and controls (the `bridge` queue group), and auth's key
# management; both are also called by operators' tools (`cctelegram keys`, Telegram commands).
CHANNELS += [
    _rpc(
        subjects.BRIDGE_RPC_STATUS,
        BridgeStatusRequest,
        BridgeStatus,
        ("gateway", "events"),
        "bridge-manager",
        "get_bridge_status and /bridge: the fleet's state, figures and health reasons.",
    ),
    _rpc(
        subjects.BRIDGE_RPC_CHECK_PROCESS,
        BridgeStatusRequest,
        ProcessCheck,
        ("gateway",),
        "bridge-manager",
        "check_bridge_process: is at least one notifier alive, and which.",
    ),
    *(
        _rpc(
            subject,
            BridgeControlRequest,
            BridgeControlResult,
            ("gateway", "events") if subject == subjects.BRIDGE_RPC_RESTART else ("gateway",),
            "bridge-manager",
            f"{name}: a bridge control (needs bridge:control; audited).",
        )
        for subject, name in (
            (subjects.BRIDGE_RPC_START, "start_bridge"),
            (subjects.BRIDGE_RPC_STOP, "stop_bridge"),
            (subjects.BRIDGE_RPC_RESTART, "restart_bridge and /restart"),
        )
    ),
    _rpc(
        subjects.BRIDGE_RPC_ENSURE,
        BridgeControlRequest,
        EnsureBridgeResult,
        ("gateway",),
        "bridge-manager",
        "ensure_bridge_running: resume, and in supervised mode start a notifier.",
    ),
    _rpc(
        subjects.AUTH_RPC_CREATE_KEY,
        CreateKeyRequest,
        CreatedKey,
        ("gateway", "cctelegram keys"),
        "auth",
        "Create a key; the full key is in the reply once and never again.",
    ),
    _rpc(
        subjects.AUTH_RPC_LIST_KEYS,
        ListKeysRequest,
        KeyList,
        ("gateway", "cctelegram keys"),
        "auth",
        "List keys (ids, clients, roles, expiry, last use; never secrets).",
    ),
    _rpc(
        subjects.AUTH_RPC_REVOKE_KEY,
        RevokeKeyRequest,
        KeyInfo,
        ("gateway", "cctelegram keys"),
        "auth",
        "Revoke a key; KeyChanged follows so every gateway forgets it within a second.",
    ),
    _rpc(
        subjects.AUTH_RPC_ROTATE_KEY,
        RotateKeyRequest,
        RotatedKey,
        ("gateway", "cctelegram keys"),
        "auth",
        "Issue a new key for the same client; the old one stays valid until revoked.",
    ),
    _rpc(
        subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET,
        CreateWebhookSecretRequest,
        CreatedWebhookSecret,
        ("gateway", "cctelegram keys"),
        "auth",
        "Create the webhook signing secret of a key's client; shown once, kept encrypted.",
    ),
    _rpc(
        subjects.AUTH_RPC_SIGN_WEBHOOK,
        SignWebhookRequest,
        WebhookSignature,
        ("events",),
        "auth",
        "Sign a decision webhook's body with the client's secret (it never leaves auth).",
    ),
    Channel(
        f"{subjects.PREFIX}.audit.{{service}}.{{action}}",
        AuditRecord,
        "event",
        ("auth", "gateway", "events", "bridge-manager"),
        ("operators",),
        "The security and control audit trail: who, what, outcome, request id; no secrets.",
        subjects.STREAM_AUDIT,
    ),
]
