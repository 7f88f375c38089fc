"""The real bridge-manager process on a real nats-server (cluster mode): status and control
RPCs, with the fleet played by heartbeats written to the KV and messages put in the outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import (
    BridgeControlRequest,
    BridgeControlResult,
    BridgeMode,
    BridgeStatus,
    BridgeStatusRequest,
    CircuitState,
    ControlAction,
    EnsureAction,
    EnsureBridgeResult,
    HealthReasonCode,
    HealthStatus,
    ProcessCheck,
)
from cctelegram_testing.processes import ServiceProcess
from cctelegram_testing.sandbox import run_sandbox

pytestmark = pytest.mark.e2e

ASK = BridgeStatusRequest(requested_by="test")
OPERATOR = BridgeControlRequest(requested_by="ops-client", request_id="req-42", via="gateway")


def reasons(status: BridgeStatus) -> dict[HealthReasonCode, HealthStatus]:
    return {reason.code: reason.status for reason in status.health_reasons}


async def test_status_follows_heartbeats_and_the_outbox(
    fleet: Any, bridge_manager: Any, poll: Any
) -> None:
    async def status() -> BridgeStatus:
        return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

    empty = await status()
    assert not empty.running
    assert empty.mode is BridgeMode.CLUSTER
    assert reasons(empty)[HealthReasonCode.NO_LIVE_NOTIFIER] is HealthStatus.FAIL
    check = await fleet.rpc(subjects.BRIDGE_RPC_CHECK_PROCESS, ASK, ProcessCheck)
    assert not check.running

    await fleet.beat("sim-1", sent_count=7, failed_count=2)
    await fleet.enqueue(5, chat_id=1001, prefix="queued")
    alive = await status()
    assert alive.running
    assert alive.health is HealthStatus.PASS, alive.health_reasons
    assert [instance.instance_id for instance in alive.instances] == ["sim-1"]
    assert alive.metrics.telegram_messages_sent == 7
    assert alive.metrics.error_count == 2
    assert alive.queue.depth == 5
    assert alive.queue.waiting == 5
    assert alive.queue.oldest_waiting_age_s is not None
    check = await fleet.rpc(subjects.BRIDGE_RPC_CHECK_PROCESS, ASK, ProcessCheck)
    assert check.running
    assert check.instances == ("sim-1",)

    async def scrape() -> str:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{bridge_manager.url}/metrics")).text

    exported = await poll(scrape, lambda text: "\noutbox_pending 5.0" in text, timeout_s=10)
    assert "\nbridge_connection_status 1.0" in exported
    assert "\noutbox_dead_letters_stored 0.0" in exported

    # The notifier stops beating: within the TTL (3 s here) it is no longer alive.
    gone = await poll(status, lambda answer: not answer.running, timeout_s=10)
    assert gone.live_instances == 0
    assert reasons(gone)[HealthReasonCode.NO_LIVE_NOTIFIER] is HealthStatus.FAIL

    # A failing fleet is reported by readiness, but bridge-manager itself stays ready.
    async def readiness() -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.get(f"{bridge_manager.url}/health/ready")

    ready = await poll(
        readiness,
        lambda answer: "no live notifier" in answer.json()["checks"]["fleet"][0]["output"],
        timeout_s=10,
    )
    assert ready.status_code == 200
    assert ready.json()["checks"]["fleet"][0]["status"] == "warn"

    await fleet.beat("sim-1", circuit_state=CircuitState.OPEN, last_error="502 Bad Gateway")
    opened = await status()
    assert opened.health is HealthStatus.FAIL
    assert reasons(opened) == {HealthReasonCode.CIRCUIT_OPEN: HealthStatus.FAIL}
    assert "502 Bad Gateway" in opened.health_reasons[0].message

    await fleet.beat("sim-1", token_rejected=True)
    rejected = await status()
    assert reasons(rejected) == {HealthReasonCode.TOKEN_REJECTED: HealthStatus.FAIL}, rejected

    malformed = await fleet.raw_rpc(subjects.BRIDGE_RPC_STOP, b'{"requested_by": 5}')
    assert not malformed.ok
    assert malformed.error is not None
    assert malformed.error.code == "invalid"


async def test_stop_start_restart_ensure_broadcast_persist_and_audit(
    fleet: Any, bridge_manager: Any
) -> None:
    await fleet.beat("sim-1")
    await fleet.enqueue(12, chat_id=2002, prefix="held")

    stopped = await fleet.rpc(subjects.BRIDGE_RPC_STOP, OPERATOR, BridgeControlResult)
    assert stopped.success
    assert stopped.paused
    assert stopped.waiting_messages == 12
    assert "12 message(s) waiting" in stopped.message
    assert (await fleet.controls.get()).action is ControlAction.PAUSE
    desired = await fleet.desired()
    assert desired["paused"] is True
    assert desired["changed_by"] == "ops-client"
    audit = await fleet.last_audit("bridge.stop")
    assert audit["client_id"] == "ops-client"
    assert audit["request_id"] == "req-42"
    assert audit["outcome"] == "success"

    paused = await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)
    assert not paused.running
    assert paused.paused
    assert paused.health is HealthStatus.WARN
    assert reasons(paused) == {HealthReasonCode.PAUSED: HealthStatus.WARN}
    assert "12 messages waiting" in paused.health_reasons[0].message

    ensured = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
    assert ensured.action is EnsureAction.STARTED
    assert ensured.success
    assert (await fleet.controls.get()).action is ControlAction.RESUME
    assert (await fleet.desired())["paused"] is False
    again = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
    assert again.action is EnsureAction.ALREADY_RUNNING

    await fleet.rpc(subjects.BRIDGE_RPC_STOP, OPERATOR, BridgeControlResult)
    assert (await fleet.controls.get()).action is ControlAction.PAUSE
    started = await fleet.rpc(subjects.BRIDGE_RPC_START, OPERATOR, BridgeControlResult)
    assert started.success
    assert not started.paused
    assert (await fleet.controls.get()).action is ControlAction.RESUME
    assert (await fleet.last_audit("bridge.start"))["outcome"] == "success"

    restarted = await fleet.rpc(subjects.BRIDGE_RPC_RESTART, OPERATOR, BridgeControlResult)
    assert restarted.success
    assert restarted.instances == ("sim-1",)
    assert (await fleet.controls.get()).action is ControlAction.RESTART
    assert (await fleet.last_audit("bridge.restart"))["client_id"] == "ops-client"


async def test_a_cluster_without_notifiers_cannot_be_ensured(
    fleet: Any, bridge_manager: Any
) -> None:
    ensured = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
    assert ensured.action is EnsureAction.FAILED
    assert not ensured.success
    assert "orchestrator" in ensured.message
    assert (await fleet.last_audit("bridge.ensure"))["outcome"] == "failure"


async def test_getme_with_a_rejected_token_fails_health(
    fleet: Any, fresh_nats: Any, tmp_path: Path, poll: Any
) -> None:
    wrong_token = "987654321:WRONG-token-abcdefghijklmnopqrstuvwxyz"
    async with run_sandbox() as sandbox:
        env = {
            "NATS_URL": fresh_nats.url,
            "BRIDGE_MANAGER_TELEMETRY__ENABLED": "false",
            "TELEGRAM_BOT_TOKEN": wrong_token,
            "TELEGRAM_API_BASE_URL": sandbox.url,
        }
        process = ServiceProcess(
            "cctelegram_bridge_manager", "BRIDGE_MANAGER_", env, tmp_path / "bm.log"
        )
        process.start()
        try:
            await fleet.beat("sim-1")

            async def status() -> BridgeStatus:
                return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

            rejected = await poll(status, lambda answer: answer.telegram.checked, timeout_s=15)
            assert rejected.telegram.token_rejected
            assert rejected.telegram.latency_ms is not None
            assert reasons(rejected)[HealthReasonCode.TOKEN_REJECTED] is HealthStatus.FAIL
            assert rejected.health is HealthStatus.FAIL
        finally:
            assert process.stop() == 0
        assert wrong_token not in process.output()
        assert wrong_token.split(":")[1] not in process.output()
