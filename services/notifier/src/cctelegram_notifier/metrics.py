"""The notifier's Prometheus metrics (served by the common ``/metrics`` endpoint)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from cctelegram_common.metrics import registry

MESSAGES_SENT = Counter(
    "telegram_messages_sent_total",
    "Bot API operations Telegram accepted, by outbox operation",
    ["operation"],
    registry=registry,
)
API_ERRORS = Counter(
    "telegram_api_errors_total",
    "Failed Bot API calls by error code (HTTP code, or timeout / network)",
    ["code"],
    registry=registry,
)
RATE_LIMITED = Counter(
    "telegram_rate_limited_total",
    "429 answers, by the scope that was paused (chat or bot)",
    ["scope"],
    registry=registry,
)
DEAD_LETTERS = Counter(
    "outbox_dead_letters_total",
    "Outbox messages given up on, by reason",
    ["reason"],
    registry=registry,
)
DUPLICATES_SKIPPED = Counter(
    "outbox_redeliveries_skipped_total",
    "Redelivered outbox messages already recorded as sent (acked without sending)",
    registry=registry,
)
COALESCED = Counter(
    "outbox_coalesced_total",
    "Outbox messages sent inside a merged Telegram message (bursts coalesced)",
    registry=registry,
)
FORUM_TOPICS_CREATED = Counter(
    "forum_topics_created_total",
    "Forum topics the notifier created for routes (createForumTopic)",
    registry=registry,
)
OUTBOX_IN_FLIGHT = Gauge(
    "outbox_in_flight",
    "Outbox messages this instance holds (fetched, not yet acked)",
    registry=registry,
)
OUTBOX_PENDING = Gauge(
    "outbox_pending",
    "Outbox messages waiting in NATS plus those handed out and not yet acked",
    registry=registry,
)
DELIVERY_LATENCY = Histogram(
    "delivery_latency_seconds",
    "From the outbox message's created_at to Telegram accepting it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
    registry=registry,
)
BRIDGE_CONNECTION = Gauge(
    "bridge_connection_status",
    "1 when the Bot API answered the last call, 0 when it did not",
    registry=registry,
)
UPDATES_RECEIVED = Counter(
    "telegram_updates_received_total",
    "Inbound updates published to the updates stream",
    ["source"],
    registry=registry,
)
POLLER_LEADER = Gauge(
    "telegram_poller_leader",
    "1 while this instance holds the getUpdates lease",
    registry=registry,
)


# Series exist from the start (at 0) for the codes dashboards and alerts look at.
for _code in ("400", "401", "403", "404", "409", "429", "500", "502", "timeout", "network"):
    API_ERRORS.labels(_code)
