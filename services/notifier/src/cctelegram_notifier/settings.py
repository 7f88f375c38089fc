"""Settings of the notifier service (environment prefix `NOTIFIER_`, nested with `__`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class RateSettings(BaseModel):
    """Telegram's flood limits as the scheduler enforces them. Env ``NOTIFIER_RATE__<NAME>``.

    Every rate is multiplied by the top-level ``rate_scale`` (handy for tests and for a
    paid-broadcast bot); intervals and windows are not scaled.
    """

    global_per_s: float = Field(default=30.0, gt=0, description="Calls per second, whole bot")
    private_per_s: float = Field(
        default=1.0, gt=0, description="Calls per second, one private chat"
    )
    group_per_min: float = Field(default=20.0, gt=0, description="Calls per minute, one group")
    group_per_s: float = Field(
        default=1.0, gt=0, description="Spacing inside a group's minute: at most this per second"
    )
    safety_margin_s: float = Field(
        default=0.01,
        ge=0,
        description="Added to the bot's window. Windows count a call until its answer "
        "arrived, so Telegram can never see more than the limit; this is only extra room",
    )
    chat_margin_s: float = Field(
        default=0.05,
        ge=0,
        description="Added to each chat's windows; costs nothing while many chats share "
        "the bot's budget",
    )
    pace_fraction: float = Field(
        default=0.75,
        gt=0,
        le=1,
        description="Calls are at least pace_fraction/global rate apart: even pacing that can "
        "still catch up after a late grant",
    )
    retry_after_pad_s: float = Field(
        default=0.1, ge=0, description="Added to Telegram's retry_after before the next call"
    )
    escalate_window_s: float = Field(
        default=2.0,
        ge=0,
        description="429s for two different chats within this window pause the whole bot",
    )


class RetrySettings(BaseModel):
    """How long one outbox message may be retried. Env ``NOTIFIER_RETRY__<NAME>``."""

    max_attempts: int = Field(default=8, ge=1, description="Calls per message on 5xx/network")
    max_rate_limited: int = Field(default=30, ge=1, description="429 answers per message")
    max_total_s: float = Field(default=600.0, gt=0, description="Give up after this long")
    base_s: float = Field(default=0.5, gt=0, description="First backoff ceiling (full jitter)")
    cap_s: float = Field(default=30.0, gt=0, description="Largest backoff")
    breaker_failures: int = Field(default=5, ge=1, description="Failures that open the circuit")
    breaker_reset_s: float = Field(default=10.0, gt=0, description="Open circuit: trial after")


class OutboxSettings(BaseModel):
    """The durable pull consumer on the outbox. Env ``NOTIFIER_OUTBOX__<NAME>``."""

    enabled: bool = Field(default=True, description="Consume the outbox at all")
    max_ack_pending: int = Field(
        default=2000, ge=1, description="Messages handed to this consumer and not yet acked"
    )
    fetch_batch: int = Field(default=100, ge=1, le=1000)
    fetch_timeout_s: float = Field(default=2.0, gt=0, description="One pull request's expiry")
    ack_wait_s: float = Field(
        default=30.0, gt=0, description="Unacked this long → redelivered (kept alive while held)"
    )
    chat_backlog: int = Field(
        default=200, ge=1, description="Messages held for one chat; beyond that they wait in NATS"
    )
    max_deliveries: int = Field(
        default=100, ge=1, description="A message redelivered this often is dead-lettered"
    )


class CoalesceSettings(BaseModel):
    """Burst coalescing in each chat's lane. Env ``NOTIFIER_COALESCE__<NAME>``.

    When a chat's lane holds several plain notifications (no buttons, not replies, same
    forum thread), the ones waiting for the chat's next call go out as one message, each
    original separated by a thin rule line, instead of one per second.
    """

    enabled: bool = Field(default=True, description="Merge a chat's waiting plain notifications")
    max_chars: int = Field(
        default=4096,
        ge=1,
        le=4096,
        description="Visible length of a merged message (UTF-16 units after entity parsing)",
    )
    max_entities: int = Field(
        default=100, ge=0, le=100, description="Formatting entities in a merged message"
    )
    max_messages: int = Field(
        default=100, ge=2, le=1000, description="Originals in one merged message"
    )


class PollingSettings(BaseModel):
    """getUpdates long polling and the poller lease. Env ``NOTIFIER_POLLING__<NAME>``."""

    enabled: bool = Field(default=True, description="Receive updates by long polling")
    timeout_s: float = Field(default=25.0, gt=0, le=50, description="getUpdates timeout")
    limit: int = Field(default=100, ge=1, le=100)
    allowed_updates: list[str] = Field(
        default_factory=lambda: ["message", "edited_message", "callback_query", "my_chat_member"]
    )
    lease_ttl_s: float = Field(
        default=30.0, gt=2, description="A dead poller is replaced within this long"
    )
    lease_check_s: float = Field(default=1.0, gt=0, description="How often the lease is checked")


class WebhookSettings(BaseModel):
    """Webhook mode: set the URL and the notifier registers it instead of polling.

    Env ``NOTIFIER_WEBHOOK__URL`` / ``NOTIFIER_WEBHOOK__SECRET_TOKEN``. The gateway receives
    the POSTs at ``/telegram/webhook`` and checks the secret.
    """

    url: str | None = None
    secret_token: SecretStr | None = None
    max_connections: int | None = Field(default=None, ge=1, le=100)
    drop_pending_updates: bool = False


class TelegramHttpSettings(BaseModel):
    """The HTTP client towards the Bot API. Env ``NOTIFIER_TELEGRAM__<NAME>``."""

    connect_timeout_s: float = Field(default=5.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0, description="Read timeout of one call")
    max_connections: int = Field(default=100, ge=1)
    max_in_flight: int = Field(
        default=4,
        ge=1,
        description="Message calls out at once. A crash can duplicate at most this many "
        "sends (accepted by Telegram, not yet recorded); 4 sustain 30/s at ~130 ms latency",
    )


class NotifierSettings(ServiceSettings):
    # hide_input_in_errors: a bad TELEGRAM_BOT_TOKENS must not print its tokens.
    model_config = SettingsConfigDict(
        **service_config("NOTIFIER_"), populate_by_name=True, hide_input_in_errors=True
    )

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8093))
    # Unprefixed: the names users already set for the original CCTelegram bridge.
    bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("bot_token", "TELEGRAM_BOT_TOKEN", "NOTIFIER_BOT_TOKEN"),
        description="The bot's token; never logged. Without it nothing is sent or polled",
    )
    bot_tokens: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("bot_tokens", "TELEGRAM_BOT_TOKENS", "NOTIFIER_BOT_TOKENS"),
        description="More bots: name=token,name=token. Each gets its own delivery budget, "
        "outbox consumer and poller; routes pick a bot by name. Never logged",
    )
    only_bots: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Serve only these bots ('default' and/or names, comma-separated); empty = "
        "all. Lets each bot have a notifier process of its own when one core is not enough",
    )
    routes_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("routes_file", "CCTELEGRAM_ROUTES_FILE"),
        description="The routes file; its `bots:` are served like TELEGRAM_BOT_TOKENS",
    )
    api_base_url: str = Field(
        default="https://api.telegram.org",
        validation_alias=AliasChoices(
            "api_base_url", "TELEGRAM_API_BASE_URL", "NOTIFIER_API_BASE_URL"
        ),
        description="Bot API root; calls go to <base>/bot<token>/<method>",
    )
    rate_scale: float = Field(default=1.0, gt=0, description="Multiplies every rate limit")
    rate: RateSettings = Field(default_factory=RateSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    coalesce: CoalesceSettings = Field(default_factory=CoalesceSettings)
    polling: PollingSettings = Field(default_factory=PollingSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    telegram: TelegramHttpSettings = Field(default_factory=TelegramHttpSettings)
    heartbeat_interval_s: float = Field(default=2.5, gt=0)
    heartbeat_ttl_s: float = Field(default=12.0, gt=1, description="Per-key TTL of a heartbeat")

    @field_validator("only_bots", mode="before")
    @classmethod
    def _split_bots(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("bot_tokens", mode="before")
    @classmethod
    def _parse_bot_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            from cctelegram_common.routes_file import parse_bot_tokens

            return parse_bot_tokens(value)
        return value

    def all_bots(self) -> dict[str | None, SecretStr]:
        """Every bot to serve: None = the default bot (TELEGRAM_BOT_TOKEN, or a bot named
        'default'), then the named ones from TELEGRAM_BOT_TOKENS and the routes file."""
        from cctelegram_common.contracts.routing import bot_or_none
        from cctelegram_common.routes_file import load_routes_file

        named: dict[str, SecretStr] = {}
        routes = load_routes_file(self.routes_file) if self.routes_file else None
        if routes is not None:
            named.update({name: SecretStr(token) for name, token in routes.bots.items()})
        named.update(self.bot_tokens)
        bots: dict[str | None, SecretStr] = {}
        if self.bot_token is not None:
            bots[None] = self.bot_token
        for name, token in named.items():
            bots.setdefault(bot_or_none(name), token)
        if self.only_bots:
            wanted = {bot_or_none(name) for name in self.only_bots}
            bots = {name: token for name, token in bots.items() if name in wanted}
        return bots
