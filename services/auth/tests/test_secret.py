"""The server secret: from env or file, refused when missing or weak outside dev mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from cctelegram_auth.secret import SecretError, load_secret
from cctelegram_auth.settings import AuthSettings


def test_a_long_secret_from_env_or_file_is_used(tmp_path: Path) -> None:
    assert load_secret(AuthSettings(secret=SecretStr("x" * 32))).value == b"x" * 32
    path = tmp_path / "secret"
    path.write_text("y" * 40 + "\n")
    loaded = load_secret(AuthSettings(secret_file=path))
    assert loaded.value == b"y" * 40
    assert loaded.ephemeral_reason is None


@pytest.mark.parametrize("secret", [None, "short", "z" * 31])
def test_missing_or_weak_secrets_are_refused(secret: str | None) -> None:
    settings = AuthSettings(secret=SecretStr(secret) if secret else None)
    with pytest.raises(SecretError) as raised:
        load_secret(settings)
    assert "\n" not in str(raised.value)
    assert secret is None or secret not in str(raised.value)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="cannot be read"):
        load_secret(AuthSettings(secret_file=tmp_path / "absent"))


def test_dev_mode_uses_an_ephemeral_secret() -> None:
    loaded = load_secret(AuthSettings(dev_mode=True))
    assert len(loaded.value) >= 32
    assert loaded.ephemeral_reason
