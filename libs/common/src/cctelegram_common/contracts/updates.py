"""Inbound Telegram updates as they travel from the notifier to the events service."""

from datetime import datetime
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now
from cctelegram_common.contracts.files import FileInfo


class InboundUpdate(Contract):
    """A Telegram ``Update`` (as Telegram sent it). Subject ``cctg.telegram.updates``.

    Published with ``Nats-Msg-Id`` = ``tg-update-<update_id>`` so a re-polled update is
    stored once.
    """

    update_id: int
    update: dict[str, Any] = Field(description="The Update object exactly as Telegram sent it")
    received_at: datetime = Field(default_factory=utc_now)
    source: str = Field(default="polling", description="polling or webhook")
    files: tuple[FileInfo, ...] = Field(
        default=(),
        description="The message's document or photo, fetched by the notifier and stored",
    )

    @property
    def msg_id(self) -> str:
        """Its ``Nats-Msg-Id``: polled, re-polled or posted by webhook, stored once."""
        return update_msg_id(self.update_id)


def update_msg_id(update_id: int) -> str:
    return f"tg-update-{update_id}"
