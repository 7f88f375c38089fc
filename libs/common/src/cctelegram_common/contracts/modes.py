"""Delivery modes (nomad / local / mute) and quiet hours, per API client, in ``cctg_state``.

``cctg_state[mode]`` is the default for everyone (the key the global mode of earlier versions
used, so an upgrade keeps it); ``cctg_state[mode.client.<client>]`` holds what one client
chose for itself. A field left ``None`` there follows the default.
"""

from datetime import datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from cctelegram_common.contracts.base import Contract, utc_now


class Mode(StrEnum):
    """nomad: everything to Telegram; local: only what needs a person; mute: only approvals
    (and critical alerts)."""

    NOMAD = "nomad"
    LOCAL = "local"
    MUTE = "mute"


class QuietHoursSpec(Contract):
    """A daily window in a time zone (may cross midnight); ``start == end`` means off."""

    start: time = Field(description="Local start, e.g. 22:00")
    end: time = Field(description="Local end, e.g. 07:00")
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class ModeState(Contract):
    """Value of ``cctg_state[mode]``: the default for every client without its own choice."""

    mode: Mode = Mode.NOMAD
    changed_by: str | None = Field(default=None, description="client id or tg:<user id>")
    changed_at: datetime = Field(default_factory=utc_now)
    quiet_hours: QuietHoursSpec | None = Field(
        default=None, description="Default quiet hours; None = the EVENTS_QUIET_HOURS_* settings"
    )


class ClientModeState(Contract):
    """Value of ``cctg_state[mode.client.<client>]``: one API client's own choice."""

    client_id: str
    mode: Mode | None = Field(default=None, description="None = follow the default")
    quiet_hours: QuietHoursSpec | None = Field(default=None, description="None = the default")
    changed_by: str | None = Field(default=None, description="client id or tg:<user id>")
    changed_at: datetime = Field(default_factory=utc_now)


class SwitchModeInput(Contract):
    """``switch_to_*_mode``: the caller's own mode, or (admins) the default for everyone."""

    for_everyone: bool = Field(
        default=False,
        description="Set the default for every client without a mode of its own instead of "
        "your own (needs the modes:default permission: admin keys)",
    )


class SetModeRequest(Contract):
    """RPC ``cctg.events.rpc.mode_set``."""

    mode: Mode
    changed_by: str
    client_id: str | None = Field(
        default=None, description="Whose mode; None = the default for everyone (admin)"
    )


class ModeResult(Contract):
    """``switch_to_*_mode``: the original's result, plus whose mode it is."""

    success: bool
    message: str
    mode: Mode
    client_id: str | None = Field(
        default=None, description="The client whose mode changed; None = the default"
    )
    digested: int = Field(
        default=0, description="Events suppressed while muted, summarised in one digest now"
    )


class SetQuietHoursInput(Contract):
    """``set_quiet_hours``: the caller's own quiet hours, or (admins) the default's."""

    start: time | None = Field(
        default=None, description="Local start, e.g. 22:00; with end. Both unset = the default"
    )
    end: time | None = Field(default=None, description="Local end, e.g. 07:00 (may be < start)")
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris")
    for_everyone: bool = Field(
        default=False,
        description="Set the default quiet hours instead of your own (needs modes:default)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return QuietHoursSpec._known_zone(value)

    @model_validator(mode="after")
    def _both_or_neither(self) -> "SetQuietHoursInput":
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end (equal = off), or neither (the default)")
        return self

    def spec(self) -> QuietHoursSpec | None:
        if self.start is None or self.end is None:
            return None
        return QuietHoursSpec(start=self.start, end=self.end, timezone=self.timezone)


class SetQuietHoursRequest(Contract):
    """RPC ``cctg.events.rpc.quiet_hours_set``."""

    quiet_hours: QuietHoursSpec | None = Field(
        description="None = follow the default (a client) or the EVENTS_QUIET_HOURS_* settings"
    )
    changed_by: str
    client_id: str | None = Field(default=None, description="None = the default (admin)")


class QuietHoursResult(Contract):
    """``set_quiet_hours``: what applies now to the client (or the default)."""

    success: bool
    message: str
    client_id: str | None = None
    quiet_hours: QuietHoursSpec | None = Field(
        default=None, description="The window that applies now; None = none"
    )
