"""Settings of the gateway service (environment prefix `GATEWAY_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from cctelegram_common.settings import CommaList, HttpSettings, ServiceSettings, service_config

LOCAL_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class GatewaySettings(ServiceSettings):
    model_config = service_config("GATEWAY_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8080))
    allowed_hosts: CommaList[list[str]] = Field(
        default_factory=lambda: list(LOCAL_HOSTS),
        description="GATEWAY_ALLOWED_HOSTS (comma-separated): Host values served; 'name:*' "
        "allows any port, '*' any host (only behind a proxy that checks Host). Others: 421",
    )
    allowed_origins: CommaList[list[str]] = Field(
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
    telegram_webhook_secret: SecretStr | None = Field(
        default=None,
        description="GATEWAY_TELEGRAM_WEBHOOK_SECRET: enables POST /telegram/webhook; Telegram "
        "sends it as X-Telegram-Bot-Api-Secret-Token",
    )
    server_name: str = Field(default="cctelegram", description="MCP server name (same everywhere)")
