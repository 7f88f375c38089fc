"""Notifier heartbeats and the bridge control broadcast."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class ControlAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    RESTART = "restart"


class BridgeControl(Contract):
    """Broadcast ``cctg.bridge.control`` that every notifier obeys.

    The desired paused/running state is also stored in the ``cctg_bridge`` KV under
    ``desired`` so a notifier that starts later obeys it too.
    """

    action: ControlAction
    requested_by: str = Field(description="client id or Telegram user that asked")
    request_id: str | None = None
    issued_at: datetime = Field(default_factory=utc_now)


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class NotifierHeartbeat(Contract):
    """Value of ``instance.<id>`` in the ``cctg_bridge`` KV, rewritten every few seconds."""

    instance_id: str
    host: str
    pid: int
    version: str
    started_at: datetime
    paused: bool
    poller: bool = Field(description="This instance holds the getUpdates lease")
    in_flight: int
    sent_count: int
    failed_count: int
    circuit_state: CircuitState
    last_error: str | None = None
    last_send_at: datetime | None = None
    token_rejected: bool = Field(default=False, description="Telegram answered 401/404")
    beat_at: datetime = Field(default_factory=utc_now)
