"""Settings of the auth service (environment prefix `AUTH_`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class AuthSettings(ServiceSettings):
    model_config = service_config("AUTH_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8091))
    secret: SecretStr | None = Field(
        default=None, description="AUTH_SECRET: the HMAC key for key digests (≥ 32 bytes)"
    )
    secret_file: Path | None = Field(
        default=None, description="AUTH_SECRET_FILE: a file holding the secret instead"
    )
    dev_mode: bool = Field(
        default=False,
        description="AUTH_DEV_MODE: without a good secret, use an ephemeral one (keys die "
        "with the process) instead of refusing to start",
    )
    bootstrap_key_file: Path | None = Field(
        default=None,
        description="AUTH_BOOTSTRAP_KEY_FILE: a file with one full key; at start the key is "
        "ensured as client 'dev', role admin, unlimited",
    )
    last_used_write_interval_s: float = Field(
        default=60.0, ge=0, description="last_used_at is written at most this often per key"
    )
