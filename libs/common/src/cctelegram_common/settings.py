"""Settings building blocks: each service nests these in its own ``BaseSettings``."""

from __future__ import annotations

import json
import os
import socket
import uuid
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

T = TypeVar("T")


def comma_separated(raw: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]``."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        if value.lstrip().startswith("["):  # a JSON list, as written by a supervisor
            return json.loads(value)
        return comma_separated(value)
    if isinstance(value, int | float):  # one number, as an embedder may pass it
        return [value]
    return value


CommaList = Annotated[T, NoDecode, BeforeValidator(_comma_list)]
"""A list setting read from one environment value: ``a,b,c`` or a JSON list. ``T`` is the
list or tuple type: ``allowed_users: CommaList[tuple[int, ...]]``. (``NoDecode``: the value
is not JSON unless it looks like a JSON list.)"""


def _urls_from_environment() -> list[str]:
    return comma_separated(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))


def _history_days_from_environment() -> float:
    return float(os.environ.get("CCTG_HISTORY_DAYS", "30"))


class NatsSettings(BaseModel):
    """How to reach NATS. Env (nested): ``<PREFIX>NATS__URLS`` or the shared ``NATS_URL``."""

    # The env value is `nats://a:4222,nats://b:4222`; NATS_URL too.
    urls: CommaList[list[str]] = Field(
        default_factory=_urls_from_environment,
        description="One or more server URLs (a cluster)",
    )
    user: str | None = None
    password: SecretStr | None = None
    creds_file: Path | None = Field(default=None, description="A .creds file (JWT + nkey)")
    nkey_seed_file: Path | None = None
    token: SecretStr | None = None
    inbox_prefix: str = Field(
        default="_INBOX", description="Per-service inbox prefix for least-privilege users"
    )
    # Local dev creates streams itself; production leaves it to `cctelegram provision`.
    provision: bool = True
    replicas: int = Field(default=1, ge=1, le=5)
    history_days: float = Field(
        default_factory=_history_days_from_environment,
        gt=0,
        description="How long decided approvals, event statuses and delivery records are kept "
        "before NATS removes them (per-key TTL / bucket max age); the shared CCTG_HISTORY_DAYS",
    )
    connect_timeout_s: float = 2.0
    reconnect_wait_s: float = 1.0


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)


class LogSettings(BaseModel):
    level: str = "INFO"
    # None = JSON unless stderr is a terminal.
    json_output: bool | None = Field(default=None, alias="json")

    model_config = {"populate_by_name": True}


class TelemetrySettings(BaseModel):
    """Tracing follows the standard ``OTEL_*`` variables; this only switches it off."""

    enabled: bool = True


def default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ServiceSettings(BaseSettings):
    """What every service has. Subclass with ``model_config = service_config("GATEWAY_")``."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    nats: NatsSettings = Field(default_factory=NatsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    instance_id: str = Field(default_factory=default_instance_id)
    secrets_to_redact: list[SecretStr] = Field(
        default_factory=list, description="Extra literal values removed from every log line"
    )
    shutdown_grace_s: float = Field(default=10.0, description="Time to finish in-flight work")


def service_config(env_prefix: str) -> SettingsConfigDict:
    """The settings config of one service: its own env prefix, ``__`` for nesting."""
    return SettingsConfigDict(env_prefix=env_prefix, env_nested_delimiter="__", extra="ignore")
