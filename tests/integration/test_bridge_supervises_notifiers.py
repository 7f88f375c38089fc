"""Real notifiers delivering to the Telegram sandbox, steered by the real bridge-manager:
kill / stop / start / restart / ensure under load, counted message by message at the sandbox."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import (
    BridgeControlRequest,
    BridgeControlResult,
    BridgeStatus,
    BridgeStatusRequest,
    CircuitState,
    EnsureAction,
    EnsureBridgeResult,
    HealthReasonCode,
    HealthStatus,
)
from cctelegram_testing.processes import ServiceProcess
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ASK = BridgeStatusRequest(requested_by="test")
OPERATOR = BridgeControlRequest(requested_by="ops", via="gateway")
CHATS = [5000 + number for number in range(25)]
TTL_S = 3


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=30.0, auto_create_chats=True) as running:
        yield running


def notifier_env(nats_url: str, sandbox: RunningSandbox) -> dict[str, str]:
    return {
        "NATS_URL": nats_url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "NOTIFIER_RATE_SCALE": "30",
        "NOTIFIER_POLLING__ENABLED": "false",
        # The checks below count each outbox message as one Telegram message of its own.
        "NOTIFIER_COALESCE__ENABLED": "false",
        "NOTIFIER_RETRY__BASE_S": "0.05",
        "NOTIFIER_RETRY__CAP_S": "0.5",
        "NOTIFIER_RETRY__BREAKER_RESET_S": "60",
        "NOTIFIER_HEARTBEAT_INTERVAL_S": "0.5",
        # A killed notifier's open pull request may take messages with it: they come back
        # after the ack wait (30 s by default).
        "NOTIFIER_OUTBOX__ACK_WAIT_S": "4",
        "NOTIFIER_HEARTBEAT_TTL_S": str(TTL_S),
        "NOTIFIER_TELEMETRY__ENABLED": "false",
        "NOTIFIER_LOG__LEVEL": "WARNING",
    }


def manager_env(nats_url: str) -> dict[str, str]:
    return {
        "NATS_URL": nats_url,
        "BRIDGE_MANAGER_HEALTH__HEARTBEAT_TTL_S": str(TTL_S),
        "BRIDGE_MANAGER_SAMPLE_INTERVAL_S": "0.5",
        "BRIDGE_MANAGER_TELEMETRY__ENABLED": "false",
    }


def delivered(sandbox: RunningSandbox) -> collections.Counter[str]:
    """Every text the sandbox received, with how often (a duplicate counts twice)."""
    texts: collections.Counter[str] = collections.Counter()
    for chat in CHATS:
        try:
            messages = sandbox.messages(chat)
        except httpx.HTTPStatusError as error:
            if error.response.status_code == 404:
                continue
            raise
        texts.update(message["text"] for message in messages)
    return texts


def counted(sandbox: RunningSandbox) -> Any:
    async def probe() -> collections.Counter[str]:
        return delivered(sandbox)

    return probe


async def enqueue(fleet: Any, prefix: str, count: int, pace_s: float = 0.0) -> list[str]:
    ids = []
    for number in range(count):
        chat = CHATS[number % len(CHATS)]
        ids += await fleet.enqueue(1, chat_id=chat, prefix=f"{prefix}-{number:04d}")
        if pace_s:
            await asyncio.sleep(pace_s)
    return ids  # each message's text is its outbox id


async def test_cluster_kill_stop_start_restart_under_load(
    fleet: Any, fresh_nats: Any, sandbox: RunningSandbox, tmp_path: Path, poll: Any
) -> None:
    manager = ServiceProcess(
        "cctelegram_bridge_manager",
        "BRIDGE_MANAGER_",
        manager_env(fresh_nats.url),
        tmp_path / "bm.log",
    )
    notifier = ServiceProcess(
        "cctelegram_notifier",
        "NOTIFIER_",
        notifier_env(fresh_nats.url, sandbox),
        tmp_path / "notifier.log",
    )
    # Both start at once: most of a start is Python importing.
    await asyncio.gather(asyncio.to_thread(manager.start), asyncio.to_thread(notifier.start))
    try:

        async def status() -> BridgeStatus:
            return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

        await poll(status, lambda answer: answer.running and answer.health is HealthStatus.PASS)

        # stop_bridge under load: what is not yet sent waits, and status says how much.
        first = await enqueue(fleet, "a", 100)
        stopped = await fleet.rpc(subjects.BRIDGE_RPC_STOP, OPERATOR, BridgeControlResult)
        assert stopped.success
        assert stopped.paused
        await poll(status, lambda answer: all(i.paused for i in answer.instances))
        second = await enqueue(fleet, "b", 100)
        total = len(first) + len(second)

        async def held() -> tuple[BridgeStatus, int]:
            return await status(), sum(delivered(sandbox).values())

        paused, sent = await poll(
            held, lambda pair: pair[0].queue.depth >= 100 and pair[0].queue.depth + pair[1] == total
        )
        assert not paused.running
        assert paused.health is HealthStatus.WARN
        reasons = {reason.code: reason for reason in paused.health_reasons}
        assert f"{paused.queue.depth} messages waiting" in reasons[HealthReasonCode.PAUSED].message
        assert sent < total

        # start_bridge: every one of them delivered, none lost, none twice.
        started = await fleet.rpc(subjects.BRIDGE_RPC_START, OPERATOR, BridgeControlResult)
        assert started.success
        await poll(counted(sandbox), lambda got: sum(got.values()) >= total)
        got = delivered(sandbox)
        assert set(got) == set(first + second)
        assert max(got.values()) == 1

        # restart_bridge in the middle of a steady flow of 500 notifications.
        flow = asyncio.create_task(enqueue(fleet, "c", 500, pace_s=0.004))
        await poll(counted(sandbox), lambda got: sum(got.values()) >= total + 100)
        restarted = await fleet.rpc(subjects.BRIDGE_RPC_RESTART, OPERATOR, BridgeControlResult)
        assert restarted.success
        third = await flow
        everything = first + second + third
        await poll(
            counted(sandbox),
            lambda got: sum(got.values()) >= len(everything),
            timeout_s=60,
        )
        got = delivered(sandbox)
        assert set(got) == set(everything)
        assert max(got.values()) == 1
        healthy = await poll(status, lambda answer: answer.queue.depth == 0)
        assert healthy.queue.delivered_last_minute >= len(third)
        assert healthy.last_event_time is not None

        # An open circuit (Telegram answering 502) turns health to fail, with the reason.
        sandbox.fault(method="sendMessage", times=1000, status=502)
        await enqueue(fleet, "d", 3)
        broken = await poll(
            status,
            lambda answer: any(i.circuit_state is CircuitState.OPEN for i in answer.instances),
        )
        circuit = {reason.code: reason for reason in broken.health_reasons}
        assert circuit[HealthReasonCode.CIRCUIT_OPEN].status is HealthStatus.FAIL
        assert broken.health is HealthStatus.FAIL

        # Kill the only notifier: within the heartbeat TTL status says not running.
        assert notifier.process is not None
        os.kill(notifier.process.pid, signal.SIGKILL)
        dead = await poll(status, lambda answer: not answer.running, timeout_s=TTL_S + 10)
        assert dead.live_instances == 0
        assert dead.health is HealthStatus.FAIL
    finally:
        notifier.stop()
        assert manager.stop() == 0, manager.tail(20)


async def test_supervised_ensure_brings_a_notifier_back_and_restart_loses_nothing(
    fleet: Any,
    fresh_nats: Any,
    sandbox: RunningSandbox,
    tmp_path: Path,
    poll: Any,
    port_block: Any,
) -> None:
    env = {
        **notifier_env(fresh_nats.url, sandbox),
        **manager_env(fresh_nats.url),
        "BRIDGE_MANAGER_SUPERVISE": "true",
        "BRIDGE_MANAGER_SUPERVISOR__NOTIFIERS": "1",
        "BRIDGE_MANAGER_SUPERVISOR__BASE_PORT": str(port_block(1)),
        "BRIDGE_MANAGER_SUPERVISOR__AUTORESTART": "false",
    }
    manager = ServiceProcess(
        "cctelegram_bridge_manager", "BRIDGE_MANAGER_", env, tmp_path / "bm.log"
    ).start()
    try:

        async def status() -> BridgeStatus:
            return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

        booted = await poll(status, lambda answer: answer.running)
        os.kill(booted.instances[0].pid, signal.SIGKILL)
        queued = await enqueue(fleet, "q", 50)
        down = await poll(status, lambda answer: not answer.running and answer.queue.depth == 50)
        assert down.health is HealthStatus.FAIL
        assert HealthReasonCode.NO_LIVE_NOTIFIER in {r.code for r in down.health_reasons}

        ensured = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
        assert ensured.action is EnsureAction.STARTED
        assert ensured.pid is not None
        await poll(counted(sandbox), lambda got: sum(got.values()) >= 50)
        got = delivered(sandbox)
        assert set(got) == set(queued)
        assert max(got.values()) == 1

        # A rolling restart of the supervised process during a steady flow of 500.
        flow = asyncio.create_task(enqueue(fleet, "r", 500, pace_s=0.004))
        await poll(counted(sandbox), lambda got: sum(got.values()) >= 100)
        restarted = await fleet.rpc(subjects.BRIDGE_RPC_RESTART, OPERATOR, BridgeControlResult)
        assert restarted.success
        assert restarted.pid not in (None, ensured.pid)
        flowed = await flow
        await poll(
            counted(sandbox),
            lambda got: sum(got.values()) >= 550,
            timeout_s=60,
        )
        got = delivered(sandbox)
        assert set(got) == set(queued + flowed)
        assert max(got.values()) == 1
    finally:
        assert manager.stop() == 0, manager.tail(20)
