"""`cctelegram approve` / `notify` without a gateway: durations, exit codes, usage errors."""

from __future__ import annotations

import argparse

import pytest

from cctelegram_cli.__main__ import build_parser
from cctelegram_cli.pipelines import EXIT_USAGE, describe, exit_code_of, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5h", 5400), ("45", 45), ("500ms", 0.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0", "3 weeks", "1x"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_exit_codes_by_status() -> None:
    assert [exit_code_of(s) for s in ("approved", "decided", "rejected")] == [0, 0, 1]
    assert {exit_code_of(s) for s in ("expired", "cancelled", "pending")} == {2}
    assert describe({"approval_id": "a", "status": "pending"}).startswith("still pending")
    decided = {"status": "approved", "chosen_option": "Ship", "decided_by_username": "alice"}
    assert describe(decided) == "approved (Ship) by @alice"


def test_usage_errors_exit_3_not_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["approve", "--wait", "soon", "--title", "x"])
    assert stopped.value.code == EXIT_USAGE
    monkeypatch.delenv("CCTELEGRAM_URL", raising=False)
    args = build_parser().parse_args(["approve", "--title", "x"])
    assert args.func(args) == EXIT_USAGE
    assert "CCTELEGRAM_URL" in capsys.readouterr().err
