"""Start, stop, restart, ensure: the rules of steering the fleet, each answered and audited.

Cluster mode acts only through the desired state and the control broadcast (the orchestrator
owns processes). Supervised mode also acts on the notifier processes bridge-manager owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from cctelegram_bridge_manager.supervisor import NotifierSupervisor
from cctelegram_common.contracts.audit import AuditOutcome, AuditRecord
from cctelegram_common.contracts.bridge import (
    BridgeControl,
    BridgeControlRequest,
    BridgeControlResult,
    BridgeMode,
    BridgeStatus,
    ControlAction,
    DesiredBridgeState,
    EnsureAction,
    EnsureBridgeResult,
)
from cctelegram_common.logging import get_logger

log = get_logger(__name__)

AUDIT_SERVICE = "bridge-manager"


class DesiredState(Protocol):
    """What the controller needs of the desired-state store (``DesiredStateStore``)."""

    async def set_paused(self, paused: bool, changed_by: str) -> DesiredBridgeState: ...


@dataclass
class BridgeController:
    """Carries out control requests. Collaborators are passed in, so tests can use fakes."""

    desired: DesiredState
    broadcast: Callable[[BridgeControl], Awaitable[None]]
    read_status: Callable[[], Awaitable[BridgeStatus]]
    audit: Callable[[AuditRecord], Awaitable[object]]
    supervisor: NotifierSupervisor | None = None
    # One control action at a time: a stop racing a start must end in a definite state.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def mode(self) -> BridgeMode:
        return BridgeMode.SUPERVISED if self.supervisor is not None else BridgeMode.CLUSTER

    async def _set(self, paused: bool, request: BridgeControlRequest) -> None:
        await self.desired.set_paused(paused, request.requested_by)
        await self.broadcast(
            BridgeControl(
                action=ControlAction.PAUSE if paused else ControlAction.RESUME,
                requested_by=request.requested_by,
                request_id=request.request_id,
            )
        )

    async def _audit(
        self, action: str, request: BridgeControlRequest, success: bool, message: str
    ) -> None:
        await self.audit(
            AuditRecord(
                service=AUDIT_SERVICE,
                action=f"bridge.{action}",
                outcome=AuditOutcome.SUCCESS if success else AuditOutcome.FAILURE,
                client_id=request.requested_by,
                request_id=request.request_id,
                target="bridge",
                reason=f"via {request.via}: {message}"[:300],
            )
        )
        log.info(
            "bridge_control",
            action=action,
            requested_by=request.requested_by,
            via=request.via,
            success=success,
        )

    def _result(
        self, status: BridgeStatus, success: bool, message: str, pid: int | None = None
    ) -> BridgeControlResult:
        return BridgeControlResult(
            success=success,
            message=message,
            pid=pid,
            paused=status.paused,
            waiting_messages=status.queue.depth,
            instances=tuple(instance.instance_id for instance in status.instances),
            mode=self.mode,
        )

    async def stop(self, request: BridgeControlRequest) -> BridgeControlResult:
        async with self.lock:
            return await self._stop(request)

    async def start(self, request: BridgeControlRequest) -> BridgeControlResult:
        async with self.lock:
            return await self._start(request)

    async def restart(self, request: BridgeControlRequest) -> BridgeControlResult:
        async with self.lock:
            return await self._restart(request)

    async def ensure(self, request: BridgeControlRequest) -> EnsureBridgeResult:
        async with self.lock:
            return await self._ensure(request)

    async def _stop(self, request: BridgeControlRequest) -> BridgeControlResult:
        """Pause delivery; messages wait durably in the outbox. Supervised: also stop the
        processes gracefully (each finishes its in-flight sends first)."""
        await self._set(True, request)
        stopped = await self.supervisor.stop() if self.supervisor is not None else 0
        status = await self.read_status()
        message = (
            f"Delivery paused: {status.queue.depth} message(s) waiting in the outbox, "
            "none lost; start_bridge resumes."
        )
        if self.supervisor is not None:
            message += f" Stopped {stopped} notifier process(es)."
        await self._audit("stop", request, True, message)
        return self._result(status, True, message)

    async def _start(self, request: BridgeControlRequest) -> BridgeControlResult:
        """Resume delivery. Supervised: start the notifier processes that are not running."""
        await self._set(False, request)
        started = await self.supervisor.start() if self.supervisor is not None else []
        status = await self.read_status()
        pid = next((slot.pid for slot in started if slot.pid is not None), None)
        alive = status.live_instances or (len(self.supervisor.alive()) if self.supervisor else 0)
        if alive:
            message = (
                f"Delivery resumed on {alive} notifier instance(s); "
                f"{status.queue.depth} message(s) waiting will be delivered."
            )
        else:
            message = "Delivery resumed, but no notifier instance is alive: " + (
                "the supervised notifier did not start (see bridge-manager logs)."
                if self.supervisor is not None
                else "in cluster mode the orchestrator must start one."
            )
        await self._audit("start", request, bool(alive), message)
        return self._result(status, bool(alive), message, pid)

    async def _restart(self, request: BridgeControlRequest) -> BridgeControlResult:
        """Every instance drains in-flight work, resets its circuit breaker and reconnects.
        Supervised: a rolling restart of the processes, each replacement ready before the
        next one stops. Unacknowledged messages are redelivered, and the deliveries record
        keeps a redelivered one from being sent twice."""
        pid: int | None = None
        if self.supervisor is not None:
            restarted = await self.supervisor.restart()
            pid = next((slot.pid for slot in restarted if slot.pid is not None), None)
            message = f"Restarted {len(restarted)} notifier process(es) one at a time."
        else:
            await self.broadcast(
                BridgeControl(
                    action=ControlAction.RESTART,
                    requested_by=request.requested_by,
                    request_id=request.request_id,
                )
            )
            message = "Restart sent: each instance drains in-flight work, resets its circuit "
            message += "breaker and reconnects."
        status = await self.read_status()
        alive = status.live_instances or (len(self.supervisor.alive()) if self.supervisor else 0)
        if not alive:
            message += " No notifier instance is alive."
        elif status.paused:
            message += " Delivery stays paused (start_bridge resumes)."
        await self._audit("restart", request, bool(alive), message)
        return self._result(status, bool(alive), message, pid)

    async def _ensure(self, request: BridgeControlRequest) -> EnsureBridgeResult:
        """Make the bridge deliver: resume a paused fleet; supervised, start what is missing."""
        status = await self.read_status()
        did: list[str] = []
        pid: int | None = None
        if status.paused:
            await self._set(False, request)
            did.append("resumed delivery")
        if self.supervisor is not None and len(self.supervisor.alive()) < len(
            self.supervisor.slots
        ):
            started = await self.supervisor.start()
            pid = next((slot.pid for slot in started if slot.pid is not None), None)
            if started:
                did.append(f"started {len(started)} notifier process(es)")
        if did:
            status = await self.read_status()
        alive = status.live_instances or (len(self.supervisor.alive()) if self.supervisor else 0)
        ids = tuple(instance.instance_id for instance in status.instances)
        if not alive:
            action = EnsureAction.FAILED
            message = "No notifier instance is alive" + (
                ": the supervised notifier did not start (see bridge-manager logs)."
                if self.supervisor is not None
                else ": in cluster mode the orchestrator must start one."
            )
        elif did:
            action = EnsureAction.STARTED
            message = f"Bridge running: {' and '.join(did)}."
        else:
            action = EnsureAction.ALREADY_RUNNING
            message = f"Bridge already running on {alive} notifier instance(s)."
        if did or action is EnsureAction.FAILED:
            await self._audit("ensure", request, action is not EnsureAction.FAILED, message)
        return EnsureBridgeResult(
            success=action is not EnsureAction.FAILED,
            message=message,
            action=action,
            pid=pid,
            instances=ids,
        )
