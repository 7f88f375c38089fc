"""Settings of the events service (environment prefix `EVENTS_`)."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from cctelegram_common.settings import CommaList, HttpSettings, ServiceSettings, service_config


class EventsSettings(ServiceSettings):
    # populate_by_name: tests and embedders pass allowed_users=... directly.
    model_config = SettingsConfigDict(**service_config("EVENTS_"), populate_by_name=True)

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8092))
    # The env value is `111,222`.
    allowed_users: CommaList[tuple[int, ...]] = Field(
        default=(),
        validation_alias=AliasChoices("TELEGRAM_ALLOWED_USERS", "EVENTS_ALLOWED_USERS"),
        description="Telegram user ids (comma-separated) who receive notifications and answer",
    )
    callback_secret: SecretStr | None = Field(
        default=None, description="HMAC key for callback_data; dev mode generates one in KV"
    )
    callback_secret_file: Path | None = Field(
        default=None, description="File holding the callback HMAC key (wins over the value)"
    )
    style: Literal["concise", "detailed"] = Field(
        default="concise", description="How much of an event's data a message shows"
    )
    live_task_cards: bool = Field(
        default=True, description="Edit one status card per task_id instead of new messages"
    )
    timezone: str = Field(default="UTC", description="For quiet hours and card timestamps")
    quiet_hours_start: time | None = Field(default=None, description="e.g. 22:00; unset = off")
    quiet_hours_end: time | None = Field(default=None, description="e.g. 07:00")
    responses_max_age_days: float = Field(
        default=30, gt=0, description="How long CCTG_RESPONSES keeps answers (at creation)"
    )
    expiry_interval_s: float = Field(
        default=1.0, gt=0, description="How often the expiry / digest job looks"
    )
    submit_linger_ms: float = Field(
        default=5,
        ge=0,
        le=1000,
        description="While events keep coming, wait this long between fetches so they are "
        "handled several at a time (fewer round trips per event); 0 = fetch at once",
    )
    task_root_allowlist: CommaList[tuple[Path, ...]] = Field(
        default=(),
        description="If set, TaskMaster files are read only under these directories",
    )

    webhook_retry_window_s: float = Field(
        default=3900,
        gt=0,
        description="Decision webhooks failing with timeouts / 5xx are retried this long "
        "after the decision, then dead-lettered (cctg.deadletter.webhook)",
    )
    webhook_timeout_s: float = Field(
        default=10, gt=0, le=60, description="One webhook attempt's HTTP timeout"
    )

    def resolved_callback_secret(self) -> bytes | None:
        """The configured HMAC key, or None (then a shared one is generated in KV)."""
        if self.callback_secret_file is not None:
            return self.callback_secret_file.read_bytes().strip()
        if self.callback_secret is not None:
            return self.callback_secret.get_secret_value().encode()
        return None
