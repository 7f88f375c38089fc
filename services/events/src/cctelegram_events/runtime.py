"""The assembled domain services of one events process (built once NATS is connected)."""

from __future__ import annotations

from dataclasses import dataclass

from cctelegram_events.approvals import ApprovalService
from cctelegram_events.modes import ModeService
from cctelegram_events.notifications import NotificationService
from cctelegram_events.responses import ResponseLog
from cctelegram_events.sessions import SessionService
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter


@dataclass
class Runtime:
    """Everything handlers call into; ``app.py`` fills it in ``on_connected``."""

    notifications: NotificationService
    modes: ModeService
    approvals: ApprovalService
    responses: ResponseLog
    tasks: TaskService
    updates: UpdateInterpreter
    sessions: SessionService


class RuntimeHolder:
    """Handlers are registered before NATS is up; they find the runtime here at call time."""

    def __init__(self) -> None:
        self._runtime: Runtime | None = None

    def set(self, runtime: Runtime) -> None:
        self._runtime = runtime

    @property
    def ready(self) -> bool:
        return self._runtime is not None

    def get(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("events runtime not ready (NATS not connected yet)")
        return self._runtime
