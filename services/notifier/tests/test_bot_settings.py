"""Which bots a notifier serves: TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKENS and the routes file;
NOTIFIER_ONLY_BOTS; and a bad list never prints a token."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cctelegram_notifier.settings import NotifierSettings

DEFAULT = "100:default-token-abcdefghijklmnop"
OPS = "200:ops-token-abcdefghijklmnopqrs"
FILED = "300:filed-token-abcdefghijklmnopq"


def test_bots_come_from_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(f"bots:\n  filed: '{FILED}'\n  ops: '{FILED}'\n")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", DEFAULT)
    monkeypatch.setenv("TELEGRAM_BOT_TOKENS", f"ops={OPS}")
    monkeypatch.setenv("CCTELEGRAM_ROUTES_FILE", str(routes))
    bots = {name: token.get_secret_value() for name, token in NotifierSettings().all_bots().items()}
    assert bots == {None: DEFAULT, "ops": OPS, "filed": FILED}  # the variable wins over the file
    monkeypatch.setenv("NOTIFIER_ONLY_BOTS", "default,filed")
    assert list(NotifierSettings().all_bots()) == [None, "filed"]


def test_a_bad_list_names_the_problem_and_never_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for bad in (f"Bad Name={OPS}", OPS):
        monkeypatch.setenv("TELEGRAM_BOT_TOKENS", bad)
        with pytest.raises(ValidationError) as refused:
            NotifierSettings()
        assert "TELEGRAM_BOT_TOKENS" in str(refused.value)
        assert "ops-token" not in str(refused.value)
