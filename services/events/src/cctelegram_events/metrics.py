"""Prometheus metrics of the events service."""

from prometheus_client import Counter, Histogram

from cctelegram_common.metrics import registry

EVENTS_PROCESSED = Counter(
    "events_processed_total",
    "Submitted events handled, by outcome (queued, held, suppressed, duplicate, edited)",
    ["outcome"],
    registry=registry,
)
OUTBOX_PUBLISHED = Counter(
    "events_outbox_messages_total",
    "Outbox messages published, by operation",
    ["operation"],
    registry=registry,
)
DELIVERY_REPORTS = Counter(
    "events_delivery_reports_total",
    "Delivery reports applied to event status, by outcome",
    ["outcome"],
    registry=registry,
)
APPROVAL_REQUESTS = Counter(
    "approval_requests_total",
    "Approval requests created",
    registry=registry,
)
APPROVAL_DECISIONS = Counter(
    "approval_decisions_total",
    "Approvals closed, by final status (approved, rejected, decided, expired, cancelled)",
    ["status"],
    registry=registry,
)
APPROVAL_DECISION_SECONDS = Histogram(
    "approval_decision_seconds",
    "Time from an approval's creation to a person's decision",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 86400),
    registry=registry,
)
APPROVAL_EXPIRY_LATENESS_SECONDS = Histogram(
    "approval_expiry_lateness_seconds",
    "Time from an approval's expiry to the on_timeout rule being applied",
    buckets=(0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30, 60, 300),
    registry=registry,
)
CALLBACK_REJECTED = Counter(
    "approval_callbacks_rejected_total",
    "Button presses refused, by reason (forged, not_approver, closed, unknown)",
    ["reason"],
    registry=registry,
)
TASK_COMPLETIONS = Counter(
    "task_completions_total",
    "Task completion events, by type (task_completion, task_failed, task_cancelled)",
    ["type"],
    registry=registry,
)
UPDATES_PROCESSED = Counter(
    "events_updates_total",
    "Inbound Telegram updates, by kind (callback, reply, command, duplicate, ignored)",
    ["kind"],
    registry=registry,
)
STRANGER_MESSAGES = Counter(
    "events_stranger_messages_total",
    "Messages and presses from users who are not allowed (ignored)",
    registry=registry,
)
RESPONSES_RECORDED = Counter(
    "events_responses_recorded_total",
    "Response records written, by kind",
    ["kind"],
    registry=registry,
)

WEBHOOKS = Counter(
    "webhook_deliveries_total",
    "Decision webhook attempts and fates: delivered, retried, dead_lettered, not_queued",
    ["outcome"],
    registry=registry,
)
WEBHOOK_SECONDS = Histogram(
    "webhook_delivery_seconds",
    "From the approval closing to the receiver's 2xx",
    registry=registry,
)
