"""Status rules from heartbeats and figures: liveness, metrics, and the health verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cctelegram_bridge_manager.settings import HealthThresholds
from cctelegram_bridge_manager.status import (
    UNKNOWN_QUEUE,
    FleetSnapshot,
    compute_status,
    is_growing,
    process_check,
)
from cctelegram_common.contracts.bridge import (
    BridgeStatus,
    CircuitState,
    DesiredBridgeState,
    HealthReasonCode,
    HealthStatus,
    NotifierHeartbeat,
    QueueFigures,
    TelegramReachability,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
THRESHOLDS = HealthThresholds(heartbeat_ttl_s=15, oldest_warn_s=60, oldest_fail_s=600)
NO_TELEGRAM = TelegramReachability(checked=False)


def beat(instance_id: str = "n1", age_s: float = 1.0, **changes: object) -> NotifierHeartbeat:
    fields: dict[str, object] = {
        "instance_id": instance_id,
        "host": "host-a",
        "pid": 100,
        "version": "0.1.0",
        "started_at": NOW - timedelta(seconds=300),
        "paused": False,
        "poller": True,
        "in_flight": 0,
        "sent_count": 10,
        "failed_count": 1,
        "circuit_state": CircuitState.CLOSED,
        "beat_at": NOW - timedelta(seconds=age_s),
    }
    fields.update(changes)
    return NotifierHeartbeat.model_validate(fields)


def queue(**changes: object) -> QueueFigures:
    return UNKNOWN_QUEUE.model_copy(update=changes)


def status_of(
    heartbeats: list[NotifierHeartbeat],
    *,
    paused: bool = False,
    figures: QueueFigures | None = None,
    telegram: TelegramReachability = NO_TELEGRAM,
    exited: frozenset[str] = frozenset(),
) -> BridgeStatus:
    snapshot = FleetSnapshot(
        now=NOW,
        heartbeats=heartbeats,
        desired=DesiredBridgeState(paused=paused, changed_by="ops"),
        queue=figures or queue(),
        telegram=telegram,
        exited_ids=exited,
    )
    return compute_status(snapshot, THRESHOLDS)


def codes(status: BridgeStatus) -> dict[HealthReasonCode, HealthStatus]:
    return {reason.code: reason.status for reason in status.health_reasons}


def test_a_fresh_heartbeat_is_a_running_healthy_fleet() -> None:
    status = status_of([beat("n1"), beat("n2", sent_count=5, failed_count=0)])
    assert status.running
    assert status.health is HealthStatus.PASS
    assert status.health_reasons == ()
    assert [i.instance_id for i in status.instances] == ["n1", "n2"]
    assert status.metrics.telegram_messages_sent == 15
    assert status.metrics.error_count == 1
    assert status.metrics.events_processed == 16
    assert status.metrics.uptime_seconds == 300


def test_a_heartbeat_older_than_the_ttl_is_a_dead_instance() -> None:
    status = status_of([beat("n1", age_s=16)])
    assert not status.running
    assert status.live_instances == 0
    assert codes(status)[HealthReasonCode.NO_LIVE_NOTIFIER] is HealthStatus.FAIL
    assert status.health is HealthStatus.FAIL
    assert "last heartbeat 16s ago" in status.health_reasons[0].message
    check = process_check(status)
    assert not check.running
    assert check.instances == ()


def test_an_exited_supervised_process_is_dead_even_with_a_fresh_heartbeat() -> None:
    status = status_of([beat("n1"), beat("n2")], exited=frozenset({"n1"}))
    assert [i.instance_id for i in status.instances] == ["n2"]
    assert process_check(status).instances == ("n2",)


def test_a_paused_fleet_warns_and_says_how_many_wait() -> None:
    status = status_of([beat(paused=True)], paused=True, figures=queue(depth=42, waiting=42))
    assert not status.running
    assert status.health is HealthStatus.WARN
    reason = status.health_reasons[0]
    assert reason.code is HealthReasonCode.PAUSED
    assert "42 messages waiting" in reason.message
    assert "by ops" in reason.message
    assert process_check(status).running  # the process is alive, only paused


def test_an_open_circuit_on_every_instance_fails_on_some_warns() -> None:
    open_beat = beat("n1", circuit_state=CircuitState.OPEN, last_error="502 Bad Gateway")
    everywhere = status_of([open_beat])
    assert codes(everywhere)[HealthReasonCode.CIRCUIT_OPEN] is HealthStatus.FAIL
    assert "502 Bad Gateway" in everywhere.health_reasons[0].message
    somewhere = status_of([open_beat, beat("n2")])
    assert codes(somewhere)[HealthReasonCode.CIRCUIT_OPEN] is HealthStatus.WARN
    assert somewhere.health is HealthStatus.WARN


def test_a_rejected_token_fails_from_a_heartbeat_or_from_getme() -> None:
    reported = status_of([beat(token_rejected=True)])
    assert codes(reported)[HealthReasonCode.TOKEN_REJECTED] is HealthStatus.FAIL
    probed = status_of(
        [beat()],
        telegram=TelegramReachability(checked=True, reachable=True, token_rejected=True),
    )
    assert codes(probed) == {HealthReasonCode.TOKEN_REJECTED: HealthStatus.FAIL}


def test_unreachable_telegram_warns() -> None:
    status = status_of(
        [beat()], telegram=TelegramReachability(checked=True, reachable=False, error="ConnectError")
    )
    assert codes(status) == {HealthReasonCode.TELEGRAM_UNREACHABLE: HealthStatus.WARN}


def test_old_waiting_messages_warn_then_fail_but_only_warn_when_paused() -> None:
    assert codes(status_of([beat()], figures=queue(depth=1, oldest_waiting_age_s=61))) == {
        HealthReasonCode.OLDEST_MESSAGE_OLD: HealthStatus.WARN
    }
    assert codes(status_of([beat()], figures=queue(depth=1, oldest_waiting_age_s=601))) == {
        HealthReasonCode.OLDEST_MESSAGE_OLD: HealthStatus.FAIL
    }
    paused = status_of([beat()], paused=True, figures=queue(depth=1, oldest_waiting_age_s=601))
    assert codes(paused)[HealthReasonCode.OLDEST_MESSAGE_OLD] is HealthStatus.WARN
    assert paused.health is HealthStatus.WARN


def test_a_growing_queue_and_recent_failures_warn() -> None:
    status = status_of([beat()], figures=queue(depth=50, growing=True, failed_last_minute=2))
    assert codes(status) == {
        HealthReasonCode.QUEUE_GROWING: HealthStatus.WARN,
        HealthReasonCode.DEAD_LETTERS: HealthStatus.WARN,
    }


def test_growth_needs_a_rise_that_never_falls() -> None:
    assert is_growing([1, 2, 2, 3, 5], 5)
    assert not is_growing([1, 2, 1, 3, 5], 5)
    assert not is_growing([3, 3, 3, 3, 3], 5)
    assert not is_growing([1, 2, 3], 5)


def test_last_event_time_is_the_latest_report_or_send() -> None:
    sent_at = NOW - timedelta(seconds=5)
    snapshot = FleetSnapshot(
        now=NOW,
        heartbeats=[beat(last_send_at=sent_at)],
        desired=DesiredBridgeState(paused=False),
        queue=queue(),
        telegram=NO_TELEGRAM,
        last_report_at=NOW - timedelta(seconds=30),
    )
    assert compute_status(snapshot, THRESHOLDS).last_event_time == sent_at


def test_unreadable_state_is_reported_not_hidden() -> None:
    snapshot = FleetSnapshot(
        now=NOW,
        heartbeats=[beat()],
        desired=DesiredBridgeState(paused=False),
        queue=None,
        telegram=NO_TELEGRAM,
        read_errors=("outbox (TimeoutError)",),
    )
    status = compute_status(snapshot, THRESHOLDS)
    assert codes(status) == {HealthReasonCode.STATE_UNKNOWN: HealthStatus.WARN}
    assert "outbox (TimeoutError)" in status.health_reasons[0].message
