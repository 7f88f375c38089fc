"""Settings of the gateway service (environment prefix `GATEWAY_`)."""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config

LOCAL_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class GatewaySettings(ServiceSettings):
    model_config = service_config("GATEWAY_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8080))
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOCAL_HOSTS),
        description="GATEWAY_ALLOWED_HOSTS (comma-separated): Host values served; 'name:*' "
        "allows any port, '*' any host (only behind a proxy that checks Host). Others: 421",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOCAL_ORIGINS),
        description="GATEWAY_ALLOWED_ORIGINS: browser Origins accepted ('scheme://host:*' any "
        "port, '*' any). A request without Origin is not a browser's and passes. Others: 403",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Larger request bodies get 413"
    )
    verify_cache_ttl_s: float = Field(
        default=30.0, ge=0, description="How long a verified key is trusted without asking auth"
    )
    verify_negative_cache_ttl_s: float = Field(
        default=2.0, ge=0, description="How long a refused key is refused without asking auth"
    )
    verify_timeout_s: float = Field(default=2.0, gt=0, description="Auth RPC timeout")
    agent_default_rate_limit_per_minute: int | None = Field(
        default=600,
        ge=1,
        description="Tool calls per minute for agent keys without their own limit (None = none)",
    )
    rate_limit_lease_s: float = Field(
        default=1.0,
        ge=0,
        description="Each replica takes about this many seconds of a key's refill from the "
        "shared budget at a time (at most 50 calls, a quarter of the limit); 0 = one call",
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="GATEWAY_TELEGRAM_WEBHOOK_SECRET: enables POST /telegram/webhook; Telegram "
        "sends it as X-Telegram-Bot-Api-Secret-Token",
    )
    server_name: str = Field(default="cctelegram", description="MCP server name (same everywhere)")

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
