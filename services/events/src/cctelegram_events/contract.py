"""What the events service does on NATS: the one declaration its subscriptions and the
AsyncAPI document are made from (see ``cctelegram_common.messaging``)."""

from __future__ import annotations

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ApprovalDue,
    ApprovalRecord,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.claude_code import (
    SessionCheckRequest,
    SessionCheckResult,
    SessionEndRequest,
    SessionRule,
    SessionRuleRequest,
)
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import (
    ModeResult,
    QuietHoursResult,
    SetModeRequest,
    SetQuietHoursRequest,
)
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_common.contracts.responses import (
    ClearedResponses,
    PendingResponses,
    ResponseRecord,
    ResponsesPage,
    ResponsesQuery,
)
from cctelegram_common.contracts.routing import (
    RouteAddRequest,
    RouteList,
    RouteListRequest,
    RouteRemoveRequest,
    RouteRule,
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
from cctelegram_common.contracts.webhooks import WebhookDeadLettered, WebhookDelivery
from cctelegram_common.messaging import Consume, Publish, Rpc, ServiceContract, Watch

PUBLISHERS = ("gateway", "internal publishers")


def _rpc(subject: str, request: type[BaseModel], reply: type[BaseModel], what: str) -> Rpc:
    return Rpc(subject, request, reply, ("gateway",), what)


CONTRACT = ServiceContract(
    service="events",
    rpc_queue=subjects.EVENTS_RPC_SERVICE,
    rpcs=(
        _rpc(
            subjects.EVENTS_RPC_RESPONSES_LIST,
            ResponsesQuery,
            ResponsesPage,
            "get_telegram_responses: the caller's responses, newest first.",
        ),
        _rpc(
            subjects.EVENTS_RPC_RESPONSES_PENDING,
            ResponsesQuery,
            PendingResponses,
            "process_pending_responses: decisions in the last since_minutes.",
        ),
        _rpc(
            subjects.EVENTS_RPC_RESPONSES_CLEAR,
            ResponsesQuery,
            ClearedResponses,
            "clear_old_responses: move the caller's cleared-before marker.",
        ),
        _rpc(
            subjects.EVENTS_RPC_APPROVAL_CANCEL,
            CancelApprovalRequest,
            ApprovalRecord,
            "cancel_approval: withdraw an open approval (owner or read-all).",
        ),
        _rpc(subjects.EVENTS_RPC_MODE_SET, SetModeRequest, ModeResult, "switch_to_*_mode."),
        _rpc(
            subjects.EVENTS_RPC_QUIET_HOURS_SET,
            SetQuietHoursRequest,
            QuietHoursResult,
            "set_quiet_hours: a client's quiet hours, or (admins) the default's.",
        ),
        _rpc(
            subjects.EVENTS_RPC_TODOS_REGISTER,
            RegisterTodosRequest,
            RegisterTodosResult,
            "register_claude_todos: replace a session's todos.",
        ),
        _rpc(
            subjects.EVENTS_RPC_TASK_STATUS,
            TaskStatusRequest,
            TaskStatusResult,
            "get_task_status: todos plus TaskMaster tasks.",
        ),
        _rpc(subjects.EVENTS_RPC_TODO, TaskStatusRequest, TodoResult, "todo: the formatted list."),
        _rpc(
            subjects.EVENTS_RPC_TEMPLATES,
            TemplatesRequest,
            TemplateCatalogue,
            "cctelegram://event-templates: every event type's template.",
        ),
        _rpc(
            subjects.EVENTS_RPC_SESSION_CHECK,
            SessionCheckRequest,
            SessionCheckResult,
            "Claude Code: note a session's activity; does a session rule allow this tool use?",
        ),
        _rpc(
            subjects.EVENTS_RPC_SESSION_RULE,
            SessionRuleRequest,
            SessionRule,
            "Claude Code: the rule a decided 'Allow for this session' approval stands for.",
        ),
        _rpc(
            subjects.EVENTS_RPC_SESSION_END,
            SessionEndRequest,
            SessionCheckResult,
            "Claude Code SessionEnd: the session's rules end with it.",
        ),
        _rpc(
            subjects.EVENTS_RPC_ROUTES_LIST, RouteListRequest, RouteList, "list_routes: every rule."
        ),
        _rpc(
            subjects.EVENTS_RPC_ROUTES_ADD,
            RouteAddRequest,
            RouteRule,
            "add_route: create or replace a route rule.",
        ),
        _rpc(
            subjects.EVENTS_RPC_ROUTES_REMOVE,
            RouteRemoveRequest,
            RouteRule,
            "remove_route: delete a route rule by name.",
        ),
    ),
    consumes=(
        Consume(
            subjects.CONSUMER_EVENTS_SUBMIT,
            subjects.STREAM_EVENTS,
            subjects.EVENT_SUBMIT,
            SubmitEvent,
            PUBLISHERS,
            "Render and deliver one notification; Nats-Msg-Id = event_id.",
        ),
        Consume(
            subjects.CONSUMER_EVENTS_APPROVALS,
            subjects.STREAM_EVENTS,
            subjects.APPROVAL_SUBMIT,
            SubmitApproval,
            PUBLISHERS,
            "Show an approval card to the approvers; Nats-Msg-Id = approval_id.",
        ),
        Consume(
            subjects.CONSUMER_EVENTS_EXPIRY,
            subjects.STREAM_APPROVAL_DUE,
            subjects.APPROVAL_TIMEOUT_ALL,
            ApprovalDue,
            ("nats-server (message schedules)",),
            "An open approval fell due; one events replica applies its on_timeout rule.",
            kind="event",
            address=subjects.approval_timeout_subject("{approval_id}"),
        ),
        Consume(
            subjects.CONSUMER_EVENTS_DELIVERIES,
            subjects.STREAM_DELIVERIES,
            subjects.DELIVERY_REPORTED,
            DeliveryReported,
            ("notifier",),
            "The notifier finished with one outbox message: sent or failed.",
            kind="event",
        ),
        Consume(
            subjects.CONSUMER_EVENTS_UPDATES,
            subjects.STREAM_UPDATES,
            subjects.TELEGRAM_UPDATES,
            InboundUpdate,
            ("notifier", "gateway (webhook)"),
            "Inbound Telegram updates, typed; Nats-Msg-Id = tg-update-<update_id>.",
            kind="event",
        ),
        Consume(
            subjects.CONSUMER_EVENTS_WEBHOOKS,
            subjects.STREAM_WEBHOOKS,
            subjects.WEBHOOK_DELIVER,
            WebhookDelivery,
            ("events",),
            "POST an approval's final record to its callback_url, signed; retried on timeouts "
            "and 5xx for the retry window (an hour), then dead-lettered.",
        ),
    ),
    watches=(
        Watch(
            subjects.RESPONSES_ALL,
            "The responses of a time window, read for get_telegram_responses and friends.",
            ResponseRecord,
        ),
        Watch(
            "$KV.{bucket}.>",
            "Key listings of events' own buckets (server-side filtered, values not fetched).",
        ),
    ),
    publishes=(
        Publish(
            f"{subjects.PREFIX}.responses.{{kind}}",
            ResponseRecord,
            "event",
            "A press, text reply or command from an allowed user; Nats-Msg-Id = resp-<update_id>.",
            subjects.STREAM_RESPONSES,
            consumers=("events",),
        ),
        Publish(
            subjects.approval_due_subject("{approval_id}"),
            ApprovalDue,
            "command",
            "The due-time index: the schedule of one open approval (Nats-Schedule: @at its "
            "expiry, target cctg.approvals.timeout.<approval_id>); replaced by an empty "
            "message with a 1 s TTL when the approval closes.",
            subjects.STREAM_APPROVAL_DUE,
            consumers=("nats-server (message schedules)",),
        ),
        Publish(
            subjects.DEAD_LETTER_WEBHOOK,
            WebhookDeadLettered,
            "event",
            "A decision webhook given up on: refused destination, 4xx, or failures past the "
            "window.",
            subjects.STREAM_DEAD_LETTER,
            consumers=("operators",),
        ),
    ),
)
