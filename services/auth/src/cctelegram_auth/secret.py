"""The server secret keys are digested under: from the environment or a file, never weak."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from cctelegram_auth.settings import AuthSettings

MIN_SECRET_BYTES = 32


class SecretError(RuntimeError):
    """The service must not start: the secret is missing, unreadable or too weak."""


def _configured(settings: AuthSettings) -> str | None:
    if settings.secret is not None and settings.secret.get_secret_value():
        return settings.secret.get_secret_value()
    if settings.secret_file is not None:
        try:
            return settings.secret_file.read_text().strip() or None
        except OSError as error:
            raise SecretError(
                f"AUTH_SECRET_FILE {settings.secret_file} cannot be read ({error.strerror})"
            ) from None
    return None


@dataclass(frozen=True)
class LoadedSecret:
    value: bytes = field(repr=False)
    # Set when development mode replaced a missing/weak secret: say so once logging is up.
    ephemeral_reason: str | None = None


def load_secret(settings: AuthSettings) -> LoadedSecret:
    """The secret; outside development mode a missing or short one is an error."""
    value = _configured(settings)
    if value is not None and len(value.encode()) >= MIN_SECRET_BYTES:
        return LoadedSecret(value.encode())
    problem = (
        "no secret: set AUTH_SECRET or AUTH_SECRET_FILE"
        if value is None
        else f"AUTH_SECRET is too weak: at least {MIN_SECRET_BYTES} bytes are needed"
    )
    if not settings.dev_mode:
        raise SecretError(f"{problem} (or AUTH_DEV_MODE=true for a throwaway one)")
    return LoadedSecret(secrets.token_bytes(MIN_SECRET_BYTES), ephemeral_reason=problem)
