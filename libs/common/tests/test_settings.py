"""The one comma-list settings type: `a,b` or a JSON list from one environment value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from cctelegram_common.settings import CommaList, NatsSettings


class Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_")

    names: CommaList[list[str]] = []
    user_ids: CommaList[tuple[int, ...]] = ()
    roots: CommaList[tuple[Path, ...]] = ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a, b,,c ", ["a", "b", "c"]), ('["a", "b,c"]', ["a", "b,c"]), ("", []), ("solo", ["solo"])],
)
def test_one_value_becomes_a_list(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("EXAMPLE_NAMES", raw)
    assert Example().names == expected


def test_items_are_typed_and_a_single_number_is_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_USER_IDS", "111,222")
    monkeypatch.setenv("EXAMPLE_ROOTS", "/srv/a,/srv/b")
    settings = Example()
    assert settings.user_ids == (111, 222)
    assert settings.roots == (Path("/srv/a"), Path("/srv/b"))
    assert Example(user_ids=7).user_ids == (7,)
    monkeypatch.setenv("EXAMPLE_USER_IDS", "111,x")
    with pytest.raises(ValueError, match="user_ids"):
        Example()


def test_nats_urls_from_the_shared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NATS_URL", "nats://a:4222, nats://b:4222")
    assert NatsSettings().urls == ["nats://a:4222", "nats://b:4222"]
