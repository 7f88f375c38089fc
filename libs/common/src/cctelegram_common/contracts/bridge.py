"""Notifier heartbeats and the bridge control broadcast."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class ControlAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    RESTART = "restart"


class BridgeControl(Contract):
    """Broadcast ``cctg.bridge.control`` that every notifier obeys.

    The desired paused/running state is also stored in the ``cctg_bridge`` KV under
    ``desired`` so a notifier that starts later obeys it too.
    """

    action: ControlAction
    requested_by: str = Field(description="client id or Telegram user that asked")
    request_id: str | None = None
    issued_at: datetime = Field(default_factory=utc_now)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BotView(Contract):
    """One bot as a notifier instance sees it: its own budget, consumer and poller."""

    name: str = Field(description="'default' or the bot's name")
    poller: bool = Field(description="This instance holds the bot's getUpdates lease")
    in_flight: int = 0
    sent_count: int = 0
    failed_count: int = 0
    rate_limited_count: int = Field(default=0, description="429 answers to this bot")
    circuit_state: CircuitState = CircuitState.CLOSED
    last_error: str | None = None
    token_rejected: bool = False


class NotifierHeartbeat(Contract):
    """Value of ``instance.<id>`` in the ``cctg_bridge`` KV, rewritten every few seconds."""

    instance_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    paused: bool
    poller: bool = Field(description="This instance holds the getUpdates lease")
    in_flight: int
    sent_count: int
    failed_count: int
    circuit_state: CircuitState
    last_error: str | None = None
    last_send_at: datetime | None = None
    token_rejected: bool = Field(default=False, description="Telegram answered 401/404")
    bots: tuple[BotView, ...] = Field(default=(), description="Each bot this instance serves")
    beat_at: datetime = Field(default_factory=utc_now)
    # Process figures for get_bridge_status; optional so older notifiers stay valid.
    memory_usage_mb: float | None = Field(default=None, description="Resident memory (MB)")
    cpu_usage_percent: float | None = Field(
        default=None, description="CPU use since the previous heartbeat (% of one core)"
    )


# --- desired state (KV ``cctg_bridge`` key ``desired``) ----------------------------------------


class DesiredBridgeState(Contract):
    """Value of ``desired`` in the ``cctg_bridge`` KV: should the fleet deliver or hold?

    Written by bridge-manager with compare-and-set; a notifier reads it at start and then
    follows ``BridgeControl`` broadcasts. ``{"paused": false}`` alone is a valid value.
    """

    paused: bool = Field(description="True: notifiers fetch nothing; messages wait durably")
    changed_by: str | None = Field(default=None, description="Who asked for this state")
    changed_at: datetime | None = Field(default=None, description="When it was asked for")


# --- status, as bridge-manager computes it ---------------------------------------------------


class HealthStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a health status, not a password
    WARN = "warn"
    FAIL = "fail"


class HealthReasonCode(StrEnum):
    NO_LIVE_NOTIFIER = "no_live_notifier"
    PAUSED = "paused"
    QUEUE_GROWING = "queue_growing"
    OLDEST_MESSAGE_OLD = "oldest_message_old"
    CIRCUIT_OPEN = "circuit_open"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a reason code, not a token
    TELEGRAM_UNREACHABLE = "telegram_unreachable"
    DEAD_LETTERS = "dead_letters"
    STATE_UNKNOWN = "state_unknown"


class HealthReason(Contract):
    """One reason the fleet is not fully healthy."""

    code: HealthReasonCode
    status: HealthStatus = Field(description="warn or fail: how much this one matters")
    message: str = Field(description="In words an operator can act on")


class InstanceView(Contract):
    """One live notifier instance as its latest heartbeat describes it."""

    instance_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    uptime_seconds: float
    paused: bool
    poller: bool = Field(description="Holds the getUpdates lease")
    in_flight: int
    sent_count: int
    failed_count: int
    circuit_state: CircuitState
    last_error: str | None = None
    last_send_at: datetime | None = None
    token_rejected: bool = False
    memory_usage_mb: float | None = None
    cpu_usage_percent: float | None = None
    bots: tuple[BotView, ...] = Field(default=(), description="Each bot it serves")
    heartbeat_at: datetime = Field(description="When the instance last reported")
    heartbeat_age_s: float = Field(description="Seconds since that report")
    supervised: bool = Field(default=False, description="A process this bridge-manager owns")


class BridgeMetrics(Contract):
    """The original CCTelegram's metrics object, computed over the live fleet."""

    uptime_seconds: float = Field(description="Longest uptime among live instances")
    events_processed: int = Field(description="Outbox messages finished (sent + failed)")
    telegram_messages_sent: int = Field(description="Accepted by Telegram, summed over instances")
    error_count: int = Field(description="Failed deliveries, summed over instances")
    memory_usage_mb: float = Field(description="Resident memory summed over instances")
    cpu_usage_percent: float = Field(description="CPU summed over instances (% of one core)")


class QueueFigures(Contract):
    """The outbox as the fleet sees it."""

    depth: int = Field(description="Messages waiting plus in flight")
    waiting: int = Field(description="Stored in the outbox, not yet handed to a notifier")
    in_flight: int = Field(description="Handed to a notifier, not yet acknowledged")
    oldest_waiting_age_s: float | None = Field(
        default=None, description="Age of the oldest message still in the outbox"
    )
    dead_letters: int = Field(description="Messages in the dead-letter stream")
    delivered_last_minute: int = Field(description="Delivery reports (sent) in the last 60 s")
    failed_last_minute: int = Field(description="Delivery reports (failed) in the last 60 s")
    delivery_rate_per_s: float = Field(description="Sent per second over the last minute")
    growing: bool = Field(default=False, description="Depth rose across recent samples")


class TelegramReachability(Contract):
    """The latest ``getMe`` bridge-manager made (the token itself is never shown)."""

    checked: bool = Field(description="False when no token is configured here")
    reachable: bool | None = None
    token_rejected: bool = False
    latency_ms: float | None = None
    bot_username: str | None = None
    error: str | None = None
    checked_at: datetime | None = None


class BridgeMode(StrEnum):
    SUPERVISED = "supervised"
    CLUSTER = "cluster"


class BridgeStatus(Contract):
    """RPC ``cctg.bridge.rpc.status`` and tool ``get_bridge_status``: the fleet, truthfully."""

    running: bool = Field(description="At least one live notifier and delivery not paused")
    health: HealthStatus
    health_reasons: tuple[HealthReason, ...] = ()
    metrics: BridgeMetrics
    last_event_time: datetime | None = Field(
        default=None, description="Latest delivery report or send seen from the fleet"
    )
    paused: bool = Field(description="The desired state: delivery paused by an operator")
    mode: BridgeMode
    live_instances: int
    instances: tuple[InstanceView, ...] = ()
    queue: QueueFigures
    telegram: TelegramReachability
    checked_at: datetime = Field(default_factory=utc_now)


# --- RPC requests and answers ---------------------------------------------------------------


class BridgeStatusRequest(Contract):
    """RPC ``cctg.bridge.rpc.status`` / ``check_process``: nothing to ask but who asks."""

    requested_by: str | None = None
    request_id: str | None = None


class BridgeControlRequest(Contract):
    """RPC ``cctg.bridge.rpc.{start,stop,restart,ensure}``; the caller already checked
    the ``bridge:control`` permission, bridge-manager writes the audit record."""

    requested_by: str = Field(description="client id, or tg:<user id> from Telegram")
    request_id: str | None = None
    via: str = Field(default="gateway", description="gateway, telegram, cli")


class ProcessCheck(Contract):
    """``check_bridge_process``: is at least one notifier alive, and which."""

    running: bool
    message: str
    instances: tuple[str, ...] = Field(default=(), description="Live instance ids")
    pids: tuple[int, ...] = ()
    paused: bool = False


class BridgeControlResult(Contract):
    """``start_bridge`` / ``stop_bridge`` / ``restart_bridge``."""

    success: bool
    message: str
    pid: int | None = Field(default=None, description="A supervised process started, if any")
    paused: bool = Field(description="The desired state after this call")
    waiting_messages: int | None = Field(default=None, description="Queue depth now")
    instances: tuple[str, ...] = Field(default=(), description="Live instance ids")
    mode: BridgeMode = BridgeMode.CLUSTER


class EnsureAction(StrEnum):
    ALREADY_RUNNING = "already_running"
    STARTED = "started"
    FAILED = "failed"


class EnsureBridgeResult(Contract):
    """``ensure_bridge_running``: resumed / started what was needed, or says why not."""

    success: bool
    message: str
    action: EnsureAction
    pid: int | None = None
    instances: tuple[str, ...] = ()
