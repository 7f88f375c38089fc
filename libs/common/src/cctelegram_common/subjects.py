"""Every NATS subject, stream, consumer and KV bucket name of the suite, in one place.

Grammar: commands ``cctg.<domain>.<verb>``, events ``cctg.<domain>.<past-tense>``,
RPC ``cctg.<svc>.rpc.<method>``. Services never spell a subject as a string literal.
"""

from typing import Final

PREFIX: Final = "cctg"

# --- streams -----------------------------------------------------------------------------
STREAM_EVENTS: Final = "CCTG_EVENTS"
STREAM_OUTBOX: Final = "CCTG_OUTBOX"
STREAM_UPDATES: Final = "CCTG_UPDATES"
STREAM_RESPONSES: Final = "CCTG_RESPONSES"
STREAM_AUDIT: Final = "CCTG_AUDIT"
STREAM_DELIVERIES: Final = "CCTG_DELIVERIES"
STREAM_DEAD_LETTER: Final = "CCTG_DEADLETTER"
STREAM_WEBHOOKS: Final = "CCTG_WEBHOOKS"
# The due-time index of open approvals: one scheduled message per open approval.
STREAM_APPROVAL_DUE: Final = "CCTG_APPROVAL_DUE"

# --- commands and events on streams ------------------------------------------------------
# SubmitEvent: a caller asks for a notification (stored before the tool call returns).
EVENT_SUBMIT: Final = "cctg.events.submit"
# SubmitApproval: a caller asks a person to decide.
APPROVAL_SUBMIT: Final = "cctg.events.approval.submit"
# Everything about approvals that the events stream stores.
APPROVALS_ALL: Final = "cctg.events.approval.>"

# The due-time index (NATS message schedules, server 2.12+): ``cctg.approvals.due.<id>`` holds
# the schedule of one open approval; at its expiry the server publishes an ApprovalDue on
# ``cctg.approvals.timeout.<id>``, which one events replica takes from a durable consumer.
APPROVAL_DUE_ALL: Final = "cctg.approvals.due.*"
APPROVAL_TIMEOUT_ALL: Final = "cctg.approvals.timeout.*"


def approval_due_subject(approval_id: str) -> str:
    """Where the schedule of one open approval lives (at most one message per subject)."""
    return f"{PREFIX}.approvals.due.{approval_id}"


def approval_timeout_subject(approval_id: str) -> str:
    """Where the server publishes the approval's ApprovalDue when it falls due."""
    return f"{PREFIX}.approvals.timeout.{approval_id}"


OUTBOX_ALL: Final = "cctg.outbox.>"
# One subject per target chat so per-chat order is a property of the subject.
OUTBOX_CHAT_PREFIX: Final = "cctg.outbox.chat"
# The default bot's chats (``OUTBOX_CHAT_PREFIX``); a named bot's under its own prefix, so
# each bot's notifier consumer takes only its own messages.
OUTBOX_DEFAULT_BOT: Final = "cctg.outbox.chat.>"
OUTBOX_BOT_PREFIX: Final = "cctg.outbox.bot"


def outbox_subject(chat_id: int, bot: str | None = None) -> str:
    """The outbox subject for one Telegram chat (negative ids spelled ``m<abs>``) of the
    default bot (``bot`` None) or of a named bot."""
    token = f"m{-chat_id}" if chat_id < 0 else str(chat_id)
    if bot is None:
        return f"{OUTBOX_CHAT_PREFIX}.{token}"
    return f"{OUTBOX_BOT_PREFIX}.{bot}.{token}"


def outbox_bot_filter(bot: str | None) -> str:
    """What one bot's outbox consumer takes."""
    return OUTBOX_DEFAULT_BOT if bot is None else f"{OUTBOX_BOT_PREFIX}.{bot}.>"


def outbox_consumer(bot: str | None) -> str:
    """The durable outbox consumer of one bot (the default bot keeps its historic name)."""
    return CONSUMER_NOTIFIER_OUTBOX if bot is None else f"{CONSUMER_NOTIFIER_OUTBOX}-{bot}"


TELEGRAM_UPDATES: Final = "cctg.telegram.updates"

DELIVERIES_ALL: Final = "cctg.delivery.>"
# DeliveryReported: the notifier's account of one outbox message (sent / failed).
DELIVERY_REPORTED: Final = "cctg.delivery.reported"

DEAD_LETTER_ALL: Final = "cctg.deadletter.>"
DEAD_LETTER_OUTBOX: Final = "cctg.deadletter.outbox"
# WebhookDeadLettered: a decision webhook given up on, with the reason.
DEAD_LETTER_WEBHOOK: Final = "cctg.deadletter.webhook"

WEBHOOKS_ALL: Final = "cctg.webhooks.>"
# WebhookDelivery: POST an approval's final record to its callback_url (events sends it).
WEBHOOK_DELIVER: Final = "cctg.webhooks.deliver"

RESPONSES_ALL: Final = "cctg.responses.>"

AUDIT_ALL: Final = "cctg.audit.>"


def audit_subject(service: str, action: str) -> str:
    """Where a service writes one audit record (``cctg.audit.<service>.<action>``)."""
    return f"{PREFIX}.audit.{service}.{action.replace('.', '_')}"


# --- core NATS (not stored) ----------------------------------------------------------------
# Broadcast to every notifier: pause / resume / restart.
BRIDGE_CONTROL: Final = "cctg.bridge.control"
# Broadcast to every gateway replica: a key was revoked or changed, drop it from caches.
AUTH_KEY_CHANGED: Final = "cctg.auth.key.changed"


# --- RPC -----------------------------------------------------------------------------------
def rpc_subject(service: str, method: str) -> str:
    """``cctg.<service>.rpc.<method>``: request-reply in the service's queue group."""
    return f"{PREFIX}.{service}.rpc.{method}"


AUTH_RPC_VERIFY: Final = rpc_subject("auth", "verify")

# --- KV buckets ----------------------------------------------------------------------------
KV_KEYS: Final = "cctg_keys"
KV_APPROVALS: Final = "cctg_approvals"
KV_DELIVERIES: Final = "cctg_deliveries"
KV_BRIDGE: Final = "cctg_bridge"
KV_EVENT_STATUS: Final = "cctg_event_status"
KV_STATE: Final = "cctg_state"
KV_SESSIONS: Final = "cctg_sessions"
# Per client: its webhook signing secret, encrypted under auth's server secret (auth only).
KV_WEBHOOK_SECRETS: Final = "cctg_webhook_secrets"
# Route rules (key = rule name), owned by the events service.
KV_ROUTES: Final = "cctg_routes"
KV_RATE_LIMITS: Final = "cctg_ratelimits"  # gateway: one token bucket per API key id
# Private to the events service: one key per processed Telegram update_id (no reader).
KV_UPDATES_SEEN: Final = "cctg_updates_seen"

# --- object store --------------------------------------------------------------------------
# Files both ways: uploads the gateway stores for the notifier to send, and documents and
# photos people send, fetched by the notifier. Its stream is ``OBJ_cctg_files``.
OBJ_FILES: Final = "cctg_files"
OBJ_FILES_STREAM: Final = f"OBJ_{OBJ_FILES}"

# --- durable consumers (<service>-<handler>) ----------------------------------------------
CONSUMER_EVENTS_SUBMIT: Final = "events-submit"
CONSUMER_EVENTS_APPROVALS: Final = "events-approvals"
CONSUMER_EVENTS_UPDATES: Final = "events-updates"
CONSUMER_EVENTS_DELIVERIES: Final = "events-deliveries"
CONSUMER_EVENTS_EXPIRY: Final = "events-expiry"
CONSUMER_NOTIFIER_OUTBOX: Final = "notifier-outbox"
CONSUMER_EVENTS_WEBHOOKS: Final = "events-webhooks"

# --- message headers -----------------------------------------------------------------------
HEADER_MSG_ID: Final = "Nats-Msg-Id"
HEADER_REQUEST_ID: Final = "X-Request-Id"

# --- bridge: KV keys in KV_BRIDGE and RPC methods of bridge-manager -----------------------
# DesiredBridgeState JSON, written by bridge-manager with compare-and-set.
BRIDGE_KEY_DESIRED: Final = "desired"
# NotifierHeartbeat JSON per instance, with a per-key TTL.
BRIDGE_KEY_INSTANCE_PREFIX: Final = "instance."
BRIDGE_KEY_INSTANCES_ALL: Final = "instance.>"
BRIDGE_KEY_POLLER_LEASE: Final = "poller.lease"
BRIDGE_KEY_POLLER_OFFSET: Final = "poller.offset"


def bridge_poller_key(bot: str, what: str) -> str:
    """``poller.<bot>.lease`` / ``poller.<bot>.offset``: a named bot's own poller."""
    return f"poller.{bot}.{what}"


def bridge_instance_key(instance_id: str) -> str:
    """``instance.<id>``: where one notifier writes its heartbeat."""
    return f"{BRIDGE_KEY_INSTANCE_PREFIX}{instance_id}"


# bridge-manager answers these (the RPC service name is ``bridge``).
BRIDGE_RPC_SERVICE: Final = "bridge"
BRIDGE_RPC_STATUS: Final = rpc_subject(BRIDGE_RPC_SERVICE, "status")
BRIDGE_RPC_CHECK_PROCESS: Final = rpc_subject(BRIDGE_RPC_SERVICE, "check_process")
BRIDGE_RPC_START: Final = rpc_subject(BRIDGE_RPC_SERVICE, "start")
BRIDGE_RPC_STOP: Final = rpc_subject(BRIDGE_RPC_SERVICE, "stop")
BRIDGE_RPC_RESTART: Final = rpc_subject(BRIDGE_RPC_SERVICE, "restart")
BRIDGE_RPC_ENSURE: Final = rpc_subject(BRIDGE_RPC_SERVICE, "ensure")


# --- events: responses, RPC methods, KV keys ------------------------------------------------
def response_subject(kind: str) -> str:
    """Where a ResponseRecord is stored: ``cctg.responses.<kind>`` (button, text, command)."""
    return f"{PREFIX}.responses.{kind}"


# The events service answers these (the RPC service name is ``events``).
EVENTS_RPC_SERVICE: Final = "events"
EVENTS_RPC_RESPONSES_LIST: Final = rpc_subject(EVENTS_RPC_SERVICE, "responses_list")
EVENTS_RPC_RESPONSES_PENDING: Final = rpc_subject(EVENTS_RPC_SERVICE, "responses_pending")
EVENTS_RPC_RESPONSES_CLEAR: Final = rpc_subject(EVENTS_RPC_SERVICE, "responses_clear")
EVENTS_RPC_APPROVAL_CANCEL: Final = rpc_subject(EVENTS_RPC_SERVICE, "approval_cancel")
EVENTS_RPC_MODE_SET: Final = rpc_subject(EVENTS_RPC_SERVICE, "mode_set")
EVENTS_RPC_QUIET_HOURS_SET: Final = rpc_subject(EVENTS_RPC_SERVICE, "quiet_hours_set")
EVENTS_RPC_TODOS_REGISTER: Final = rpc_subject(EVENTS_RPC_SERVICE, "todos_register")
EVENTS_RPC_TASK_STATUS: Final = rpc_subject(EVENTS_RPC_SERVICE, "task_status")
EVENTS_RPC_TODO: Final = rpc_subject(EVENTS_RPC_SERVICE, "todo")
EVENTS_RPC_TEMPLATES: Final = rpc_subject(EVENTS_RPC_SERVICE, "templates")
EVENTS_RPC_SESSION_CHECK: Final = rpc_subject(EVENTS_RPC_SERVICE, "session_check")
EVENTS_RPC_SESSION_RULE: Final = rpc_subject(EVENTS_RPC_SERVICE, "session_rule")
EVENTS_RPC_SESSION_END: Final = rpc_subject(EVENTS_RPC_SERVICE, "session_end")
EVENTS_RPC_ROUTES_LIST: Final = rpc_subject(EVENTS_RPC_SERVICE, "routes_list")
EVENTS_RPC_ROUTES_ADD: Final = rpc_subject(EVENTS_RPC_SERVICE, "routes_add")
EVENTS_RPC_ROUTES_REMOVE: Final = rpc_subject(EVENTS_RPC_SERVICE, "routes_remove")

# Keys in KV_STATE written by the events service.
STATE_KEY_MODE: Final = "mode"  # the default for every client
STATE_KEY_MODE_CLIENT_PREFIX: Final = "mode.client."  # + client key: one client's own choice
STATE_KEY_MUTED_PREFIX: Final = "muted."  # + client key: what was suppressed while muted
STATE_KEY_CALLBACK_SECRET: Final = "events.callback_secret"  # noqa: S105 (a key name)

# --- auth: key management RPCs (answered by the auth service) ------------------------------
AUTH_RPC_SERVICE: Final = "auth"
AUTH_RPC_CREATE_KEY: Final = rpc_subject(AUTH_RPC_SERVICE, "create_key")
AUTH_RPC_LIST_KEYS: Final = rpc_subject(AUTH_RPC_SERVICE, "list_keys")
AUTH_RPC_REVOKE_KEY: Final = rpc_subject(AUTH_RPC_SERVICE, "revoke_key")
AUTH_RPC_ROTATE_KEY: Final = rpc_subject(AUTH_RPC_SERVICE, "rotate_key")
# A client's webhook secret: created (shown once) by an admin; only auth ever holds it, and
# the sender of decision webhooks (events) asks auth to sign each delivery.
AUTH_RPC_CREATE_WEBHOOK_SECRET: Final = rpc_subject(AUTH_RPC_SERVICE, "create_webhook_secret")
AUTH_RPC_SIGN_WEBHOOK: Final = rpc_subject(AUTH_RPC_SERVICE, "sign_webhook")
