"""Inbound Telegram updates as they travel from the notifier to the events service."""

from datetime import datetime
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class InboundUpdate(Contract):
    """A Telegram ``Update`` (as Telegram sent it). Subject ``cctg.telegram.updates``.

    Published with ``Nats-Msg-Id`` = ``tg-update-<update_id>`` so a re-polled update is
    stored once.
    """

    update_id: int
    update: dict[str, Any] = Field(description="The Update object exactly as Telegram sent it")
    received_at: datetime = Field(default_factory=utc_now)
    source: str = Field(default="polling", description="polling or webhook")
    bot: str | None = Field(
        default=None, description="The named bot that received it (None: the default bot)"
    )
    topic_key: str | None = Field(
        default=None,
        description="The forum topic it came from, when the notifier made that topic for a "
        "route (project:<name> or session:<key>)",
    )

    @property
    def msg_id(self) -> str:
        """Its ``Nats-Msg-Id``: polled, re-polled or posted by webhook, stored once."""
        return update_msg_id(self.update_id, self.bot)

    @property
    def key(self) -> str:
        """Unique across bots (update ids are per bot)."""
        return str(self.update_id) if self.bot is None else f"{self.bot}-{self.update_id}"


def update_msg_id(update_id: int, bot: str | None = None) -> str:
    return f"tg-update-{update_id}" if bot is None else f"tg-update-{bot}-{update_id}"
