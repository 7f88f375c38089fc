"""Delivery modes (nomad / local / mute), stored in ``cctg_state`` under ``mode``."""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class Mode(StrEnum):
    """nomad: everything to Telegram; local: only what needs a person; mute: only approvals
    (and critical alerts)."""

    NOMAD = "nomad"
    LOCAL = "local"
    MUTE = "mute"


class ModeState(Contract):
    """Value of ``cctg_state[mode]``."""

    mode: Mode = Mode.NOMAD
    changed_by: str | None = Field(default=None, description="client id or tg:<user id>")
    changed_at: datetime = Field(default_factory=utc_now)


class SetModeRequest(Contract):
    """RPC ``cctg.events.rpc.mode_set``."""

    mode: Mode
    changed_by: str


class ModeResult(Contract):
    """``switch_to_*_mode``: the original's result."""

    success: bool
    message: str
    mode: Mode
