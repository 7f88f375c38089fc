"""The fleet's status from what it reported: liveness, figures, and the health verdict.

Plain functions over plain data, so every rule is testable without NATS.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cctelegram_bridge_manager.settings import HealthThresholds
from cctelegram_common.contracts.bridge import (
    BridgeMetrics,
    BridgeMode,
    BridgeStatus,
    CircuitState,
    DesiredBridgeState,
    HealthReason,
    HealthReasonCode,
    HealthStatus,
    InstanceView,
    NotifierHeartbeat,
    ProcessCheck,
    QueueFigures,
    TelegramReachability,
)

_SEVERITY = {HealthStatus.PASS: 0, HealthStatus.WARN: 1, HealthStatus.FAIL: 2}

UNKNOWN_QUEUE = QueueFigures(
    depth=0,
    waiting=0,
    in_flight=0,
    dead_letters=0,
    delivered_last_minute=0,
    failed_last_minute=0,
    delivery_rate_per_s=0.0,
)


@dataclass(frozen=True)
class FleetSnapshot:
    """Everything read from NATS (and the supervisor) at one moment."""

    now: datetime
    heartbeats: Sequence[NotifierHeartbeat]
    desired: DesiredBridgeState
    queue: QueueFigures | None
    telegram: TelegramReachability
    mode: BridgeMode = BridgeMode.CLUSTER
    supervised_ids: frozenset[str] = frozenset()
    # Supervised processes known to have exited: their last heartbeat is no longer true.
    exited_ids: frozenset[str] = frozenset()
    last_report_at: datetime | None = None
    read_errors: tuple[str, ...] = field(default=())


def seconds_since(moment: datetime, now: datetime) -> float:
    # A clock slightly ahead on the notifier's host must not make an age negative.
    return max(0.0, (now - moment).total_seconds())


def heartbeat_age_s(heartbeat: NotifierHeartbeat, now: datetime) -> float:
    return seconds_since(heartbeat.beat_at, now)


def live_heartbeats(snapshot: FleetSnapshot, ttl_s: float) -> list[NotifierHeartbeat]:
    """Instances whose latest heartbeat is within the TTL (the KV TTL may lag behind)."""
    return [
        beat
        for beat in snapshot.heartbeats
        if heartbeat_age_s(beat, snapshot.now) <= ttl_s
        and beat.instance_id not in snapshot.exited_ids
    ]


def instance_view(beat: NotifierHeartbeat, now: datetime, supervised: bool) -> InstanceView:
    return InstanceView(
        instance_id=beat.instance_id,
        host=beat.host,
        pid=beat.pid,
        version=beat.version,
        started_at=beat.started_at,
        uptime_seconds=round(seconds_since(beat.started_at, now), 1),
        paused=beat.paused,
        poller=beat.poller,
        in_flight=beat.in_flight,
        sent_count=beat.sent_count,
        failed_count=beat.failed_count,
        circuit_state=beat.circuit_state,
        last_error=beat.last_error,
        last_send_at=beat.last_send_at,
        token_rejected=beat.token_rejected,
        memory_usage_mb=beat.memory_usage_mb,
        cpu_usage_percent=beat.cpu_usage_percent,
        bots=beat.bots,
        heartbeat_at=beat.beat_at,
        heartbeat_age_s=round(heartbeat_age_s(beat, now), 2),
        supervised=supervised,
    )


def fleet_metrics(instances: Sequence[InstanceView]) -> BridgeMetrics:
    """The original's metrics object, summed over the live instances."""
    sent = sum(instance.sent_count for instance in instances)
    failed = sum(instance.failed_count for instance in instances)
    return BridgeMetrics(
        uptime_seconds=max((instance.uptime_seconds for instance in instances), default=0.0),
        events_processed=sent + failed,
        telegram_messages_sent=sent,
        error_count=failed,
        memory_usage_mb=round(sum(i.memory_usage_mb or 0.0 for i in instances), 1),
        cpu_usage_percent=round(sum(i.cpu_usage_percent or 0.0 for i in instances), 1),
    )


def _latest(times: Iterable[datetime | None]) -> datetime | None:
    present = [moment for moment in times if moment is not None]
    return max(present) if present else None


def _ids(instances: Iterable[InstanceView]) -> str:
    return ", ".join(instance.instance_id for instance in instances)


def health_reasons(
    snapshot: FleetSnapshot,
    instances: Sequence[InstanceView],
    queue: QueueFigures,
    thresholds: HealthThresholds,
) -> list[HealthReason]:
    """Why the fleet is not fully healthy; empty means ``pass``."""
    reasons: list[HealthReason] = []

    def add(code: HealthReasonCode, status: HealthStatus, message: str) -> None:
        reasons.append(HealthReason(code=code, status=status, message=message))

    paused = snapshot.desired.paused
    if not instances:
        last_seen = _latest(beat.beat_at for beat in snapshot.heartbeats)
        seen = (
            f"; last heartbeat {seconds_since(last_seen, snapshot.now):.0f}s ago"
            if last_seen
            else ""
        )
        add(
            HealthReasonCode.NO_LIVE_NOTIFIER,
            HealthStatus.FAIL,
            f"no live notifier instance{seen}; {queue.depth} messages waiting",
        )
    if paused:
        who = f" by {snapshot.desired.changed_by}" if snapshot.desired.changed_by else ""
        add(
            HealthReasonCode.PAUSED,
            HealthStatus.WARN,
            f"delivery paused{who}; {queue.depth} messages waiting (start_bridge resumes)",
        )
    rejected = [instance for instance in instances if instance.token_rejected]
    if rejected or snapshot.telegram.token_rejected:
        where = f" (reported by {_ids(rejected)})" if rejected else " (getMe)"
        add(
            HealthReasonCode.TOKEN_REJECTED,
            HealthStatus.FAIL,
            f"Telegram rejected the bot token{where}; check TELEGRAM_BOT_TOKEN",
        )
    open_circuit = [i for i in instances if i.circuit_state is not CircuitState.CLOSED]
    if open_circuit:
        every = len(open_circuit) == len(instances) and all(
            i.circuit_state is CircuitState.OPEN for i in open_circuit
        )
        last_error = next((i.last_error for i in open_circuit if i.last_error), None)
        add(
            HealthReasonCode.CIRCUIT_OPEN,
            HealthStatus.FAIL if every else HealthStatus.WARN,
            f"circuit breaker not closed on {_ids(open_circuit)}"
            + (f"; last error: {last_error}" if last_error else ""),
        )
    if (
        snapshot.telegram.checked
        and snapshot.telegram.reachable is False
        and not snapshot.telegram.token_rejected
    ):
        add(
            HealthReasonCode.TELEGRAM_UNREACHABLE,
            HealthStatus.WARN,
            f"getMe failed: {snapshot.telegram.error or 'unknown error'}",
        )
    oldest = queue.oldest_waiting_age_s
    if oldest is not None and oldest > thresholds.oldest_warn_s:
        # A paused fleet holds messages on purpose: old messages then only warn.
        failing = oldest > thresholds.oldest_fail_s and not paused
        add(
            HealthReasonCode.OLDEST_MESSAGE_OLD,
            HealthStatus.FAIL if failing else HealthStatus.WARN,
            f"oldest waiting message is {oldest:.0f}s old "
            f"(warn > {thresholds.oldest_warn_s:.0f}s, fail > {thresholds.oldest_fail_s:.0f}s)",
        )
    if queue.growing and not paused:
        add(
            HealthReasonCode.QUEUE_GROWING,
            HealthStatus.WARN,
            f"outbox keeps growing ({queue.depth} messages, "
            f"{queue.delivery_rate_per_s:.1f}/s delivered)",
        )
    if queue.failed_last_minute:
        add(
            HealthReasonCode.DEAD_LETTERS,
            HealthStatus.WARN,
            f"{queue.failed_last_minute} deliveries failed in the last minute "
            f"({queue.dead_letters} dead letters kept)",
        )
    if snapshot.read_errors:
        add(
            HealthReasonCode.STATE_UNKNOWN,
            HealthStatus.WARN,
            "could not read: " + "; ".join(snapshot.read_errors),
        )
    return reasons


def worst(reasons: Iterable[HealthReason]) -> HealthStatus:
    verdict = HealthStatus.PASS
    for reason in reasons:
        if _SEVERITY[reason.status] > _SEVERITY[verdict]:
            verdict = reason.status
    return verdict


def compute_status(snapshot: FleetSnapshot, thresholds: HealthThresholds) -> BridgeStatus:
    """The whole status: who is alive, the figures, the verdict and its reasons."""
    live = live_heartbeats(snapshot, thresholds.heartbeat_ttl_s)
    instances = tuple(
        instance_view(beat, snapshot.now, beat.instance_id in snapshot.supervised_ids)
        for beat in sorted(live, key=lambda beat: beat.instance_id)
    )
    queue = snapshot.queue or UNKNOWN_QUEUE
    reasons = health_reasons(snapshot, instances, queue, thresholds)
    return BridgeStatus(
        running=bool(instances) and not snapshot.desired.paused,
        health=worst(reasons),
        health_reasons=tuple(reasons),
        metrics=fleet_metrics(instances),
        last_event_time=_latest(
            [snapshot.last_report_at, *(beat.last_send_at for beat in snapshot.heartbeats)]
        ),
        paused=snapshot.desired.paused,
        mode=snapshot.mode,
        live_instances=len(instances),
        instances=instances,
        queue=queue,
        telegram=snapshot.telegram,
        checked_at=snapshot.now,
    )


def process_check(status: BridgeStatus) -> ProcessCheck:
    """``check_bridge_process``: alive means a fresh heartbeat, never a process-name match."""
    ids = tuple(instance.instance_id for instance in status.instances)
    if ids:
        state = "paused" if status.paused else "delivering"
        message = f"{len(ids)} live notifier instance(s), {state}: {', '.join(ids)}"
    else:
        message = "no live notifier instance (no fresh heartbeat)"
    return ProcessCheck(
        running=bool(ids),
        message=message,
        instances=ids,
        pids=tuple(instance.pid for instance in status.instances),
        paused=status.paused,
    )


def is_growing(depths: Sequence[int], samples: int) -> bool:
    """True when the last ``samples`` depths never fell and ended higher than they began."""
    if len(depths) < samples:
        return False
    recent = list(depths)[-samples:]
    return all(b >= a for a, b in itertools.pairwise(recent)) and recent[-1] > recent[0]
