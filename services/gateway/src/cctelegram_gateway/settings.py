"""Settings of the gateway service (environment prefix `GATEWAY_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from cctelegram_common.settings import CommaList, HttpSettings, ServiceSettings, service_config

LOCAL_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOCAL_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class ClaudeCodeSettings(BaseModel):
    """``GATEWAY_CLAUDE_CODE__*``: how the gateway answers Claude Code."""

    permission_wait_s: float = Field(
        default=600.0, gt=0, le=86400, description="request_permission: how long a card waits"
    )
    permission_timeout: Literal["deny", "allow"] = Field(
        default="deny", description="request_permission's answer when nobody decided in time"
    )
    hook_wait_s: float = Field(
        default=570.0,
        gt=0,
        le=3600,
        description="PreToolUse / PermissionRequest: answer within this (the hook's own "
        "timeout is 600 s by default; set the hook's timeout above this)",
    )
    hook_fallback: Literal["ask", "deny", "allow"] = Field(
        default="ask", description="PreToolUse's answer when nobody decided in time"
    )
    question_wait_s: float = Field(
        default=300.0, gt=0, le=3600, description="AskUserQuestion / ExitPlanMode cards"
    )
    read_only_mcp_tools: list[str] = Field(
        default_factory=list,
        description="MCP tools (full names, '*' suffix for a prefix) that pass without a person",
    )
    continue_window_s: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="Stop: wait this long for a reply that continues the session (0 = off)",
    )
    continue_projects: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Projects whose Stop hook waits for a reply ('*' = every project)",
    )
    notify_subagent_stop: bool = Field(default=False, description="SubagentStop notifications")


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
    claude_code: ClaudeCodeSettings = Field(
        default_factory=ClaudeCodeSettings,
        description="GATEWAY_CLAUDE_CODE__*: permission prompt tool and hooks",
    )
