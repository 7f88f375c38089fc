"""The assembled domain services of one events process (built once NATS is connected)."""

from __future__ import annotations

from dataclasses import dataclass

from cctelegram_events.approvals import ApprovalService
from cctelegram_events.modes import ModeService
from cctelegram_events.notifications import NotificationService
from cctelegram_events.responses import ResponseLog
from cctelegram_events.routing import RouteBook
from cctelegram_events.sessions import SessionService
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter


@dataclass
class Runtime:
    """Everything handlers call into, built in the service's connect step (``app.py``)."""

    notifications: NotificationService
    modes: ModeService
    approvals: ApprovalService
    responses: ResponseLog
    tasks: TaskService
    updates: UpdateInterpreter
    sessions: SessionService
    routes: RouteBook
