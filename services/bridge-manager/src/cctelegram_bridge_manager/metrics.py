"""Prometheus gauges of the fleet, refreshed by bridge-manager's sampler."""

from __future__ import annotations

from prometheus_client import Gauge

from cctelegram_common.contracts.bridge import BridgeStatus, HealthStatus
from cctelegram_common.metrics import registry

BRIDGE_CONNECTION_STATUS = Gauge(
    "bridge_connection_status",
    "1 when at least one live notifier is delivering (not paused), else 0",
    registry=registry,
)
BRIDGE_LIVE_INSTANCES = Gauge(
    "bridge_live_instances", "Notifier instances with a fresh heartbeat", registry=registry
)
BRIDGE_PAUSED = Gauge(
    "bridge_paused", "1 when delivery is paused by an operator", registry=registry
)
BRIDGE_HEALTH = Gauge(
    "bridge_health_status", "Fleet health: 0 pass, 1 warn, 2 fail", registry=registry
)
OUTBOX_PENDING = Gauge(
    "outbox_pending", "Outbox messages waiting or in flight (queue depth)", registry=registry
)
OUTBOX_IN_FLIGHT = Gauge(
    "outbox_in_flight",
    "Outbox messages handed to a notifier, not yet acknowledged",
    registry=registry,
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_message_age_seconds",
    "Age of the oldest message still in the outbox (0 when empty)",
    registry=registry,
)
OUTBOX_DEAD_LETTERS = Gauge(
    "outbox_dead_letters_stored", "Messages kept in the dead-letter stream", registry=registry
)
DELIVERY_RATE = Gauge(
    "bridge_delivery_rate_per_second",
    "Delivery reports (sent) per second over the last minute",
    registry=registry,
)
TELEGRAM_GETME_LATENCY = Gauge(
    "bridge_telegram_getme_latency_seconds",
    "Latency of bridge-manager's latest getMe (absent without a token)",
    registry=registry,
)

_HEALTH_VALUE = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}


def publish(status: BridgeStatus) -> None:
    """Set every gauge from one computed status."""
    BRIDGE_CONNECTION_STATUS.set(1 if status.running else 0)
    BRIDGE_LIVE_INSTANCES.set(status.live_instances)
    BRIDGE_PAUSED.set(1 if status.paused else 0)
    BRIDGE_HEALTH.set(_HEALTH_VALUE[status.health])
    OUTBOX_PENDING.set(status.queue.depth)
    OUTBOX_IN_FLIGHT.set(status.queue.in_flight)
    OUTBOX_OLDEST_AGE.set(status.queue.oldest_waiting_age_s or 0.0)
    OUTBOX_DEAD_LETTERS.set(status.queue.dead_letters)
    DELIVERY_RATE.set(status.queue.delivery_rate_per_s)
    if status.telegram.latency_ms is not None:
        TELEGRAM_GETME_LATENCY.set(status.telegram.latency_ms / 1000)
