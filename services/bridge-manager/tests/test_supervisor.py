"""Supervised mode with real child processes (a stand-in notifier that only beats): start at
boot, restart after a crash, stop / ensure / restart on request, children gone on SIGTERM."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import (
    BridgeControlRequest,
    BridgeControlResult,
    BridgeMode,
    BridgeStatus,
    BridgeStatusRequest,
    EnsureAction,
    EnsureBridgeResult,
    ProcessCheck,
)
from cctelegram_testing.processes import ServiceProcess

pytestmark = pytest.mark.e2e

TESTS = Path(__file__).resolve().parent
ASK = BridgeStatusRequest(requested_by="test")
OPERATOR = BridgeControlRequest(requested_by="ops", via="cli")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; /proc says whether it has exited.
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def supervised(fresh_nats: Any, tmp_path: Path, base_port: int, **extra: str) -> ServiceProcess:
    env = {
        "NATS_URL": fresh_nats.url,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "BRIDGE_MANAGER_SUPERVISE": "true",
        "BRIDGE_MANAGER_SUPERVISOR__MODULE": "fake_notifier",
        "BRIDGE_MANAGER_SUPERVISOR__NOTIFIERS": "2",
        "BRIDGE_MANAGER_SUPERVISOR__BASE_PORT": str(base_port),
        "BRIDGE_MANAGER_SUPERVISOR__RESTART_BASE_S": "0.2",
        "BRIDGE_MANAGER_SUPERVISOR__STOP_GRACE_S": "5",
        "BRIDGE_MANAGER_HEALTH__HEARTBEAT_TTL_S": "3",
        "BRIDGE_MANAGER_SAMPLE_INTERVAL_S": "0.5",
        "BRIDGE_MANAGER_TELEMETRY__ENABLED": "false",
        **extra,
    }
    return ServiceProcess("cctelegram_bridge_manager", "BRIDGE_MANAGER_", env, tmp_path / "bm.log")


@pytest.fixture
def manager(fresh_nats: Any, tmp_path: Path, port_block: Any) -> Iterator[ServiceProcess]:
    process = supervised(fresh_nats, tmp_path, port_block(2)).start()
    try:
        yield process
    finally:
        process.stop()


async def test_supervised_notifiers_live_crash_restart_stop_ensure(
    fleet: Any, manager: ServiceProcess, poll: Any
) -> None:
    async def status() -> BridgeStatus:
        return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

    booted = await poll(status, lambda answer: answer.live_instances == 2)
    assert booted.mode is BridgeMode.SUPERVISED
    assert booted.running
    assert all(instance.supervised for instance in booted.instances)
    first, second = booted.instances

    # A crash: the instance is gone at once (not after the TTL) and comes back as a new one.
    os.kill(first.pid, signal.SIGKILL)
    recovered = await poll(
        status,
        lambda answer: (
            answer.live_instances == 2
            and first.instance_id not in {i.instance_id for i in answer.instances}
        ),
    )
    assert second.instance_id in {i.instance_id for i in recovered.instances}

    stopped = await fleet.rpc(subjects.BRIDGE_RPC_STOP, OPERATOR, BridgeControlResult)
    assert stopped.success
    assert stopped.paused
    assert "Stopped 2 notifier process(es)" in stopped.message
    assert stopped.instances == ()
    assert not any(alive(instance.pid) for instance in recovered.instances)
    check = await fleet.rpc(subjects.BRIDGE_RPC_CHECK_PROCESS, ASK, ProcessCheck)
    assert not check.running

    ensured = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
    assert ensured.action is EnsureAction.STARTED
    assert ensured.pid is not None
    assert "resumed delivery and started 2 notifier process(es)" in ensured.message
    running = await poll(status, lambda answer: answer.live_instances == 2 and answer.running)

    restarted = await fleet.rpc(subjects.BRIDGE_RPC_RESTART, OPERATOR, BridgeControlResult)
    assert restarted.success
    assert "Restarted 2 notifier process(es)" in restarted.message
    after = await poll(status, lambda answer: answer.live_instances == 2)
    old_ids = {instance.instance_id for instance in running.instances}
    assert not old_ids & {instance.instance_id for instance in after.instances}
    assert not any(alive(instance.pid) for instance in running.instances)

    # bridge-manager's own SIGTERM stops its children too.
    assert manager.stop() == 0
    assert not any(alive(instance.pid) for instance in after.instances)


async def test_without_autorestart_ensure_brings_a_killed_notifier_back(
    fleet: Any, fresh_nats: Any, tmp_path: Path, port_block: Any, poll: Any
) -> None:
    process = supervised(
        fresh_nats,
        tmp_path,
        port_block(1),
        BRIDGE_MANAGER_SUPERVISOR__NOTIFIERS="1",
        BRIDGE_MANAGER_SUPERVISOR__AUTORESTART="false",
    ).start()
    try:

        async def status() -> BridgeStatus:
            return await fleet.rpc(subjects.BRIDGE_RPC_STATUS, ASK, BridgeStatus)

        booted = await poll(status, lambda answer: answer.live_instances == 1)
        os.kill(booted.instances[0].pid, signal.SIGKILL)
        down = await poll(status, lambda answer: not answer.running)
        assert down.live_instances == 0
        ensured = await fleet.rpc(subjects.BRIDGE_RPC_ENSURE, OPERATOR, EnsureBridgeResult)
        assert ensured.action is EnsureAction.STARTED
        back = await poll(status, lambda answer: answer.running)
        assert back.instances[0].pid == ensured.pid
    finally:
        assert process.stop() == 0
