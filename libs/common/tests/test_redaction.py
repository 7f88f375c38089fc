"""Secrets never survive redaction: bot tokens, API keys, URL passwords, registered values."""

import logging

from hypothesis import given
from hypothesis import strategies as st

from cctelegram_common.apikeys import generate_key
from cctelegram_common.logging import RedactingFilter
from cctelegram_common.redaction import REDACTED, Redactor

BOT_TOKEN = "123456789:AAHk3z_Qx-9fJk2LmNoPqRsTuVwXyZ01234"


def test_bot_token_inside_a_bot_api_url_is_removed() -> None:
    text = f"POST https://api.telegram.org/bot{BOT_TOKEN}/sendMessage failed"
    redacted = Redactor()(text)
    assert BOT_TOKEN not in redacted
    assert "/sendMessage" in redacted


def test_api_key_and_bearer_and_url_password_are_removed() -> None:
    key = generate_key().full
    text = f"key={key} Authorization: Bearer abcdefghijklmnop nats://svc:hunter2pass@host:4222"
    redacted = Redactor()(text)
    assert key not in redacted
    assert "abcdefghijklmnop" not in redacted
    assert "hunter2pass" not in redacted
    assert "nats://svc:" in redacted


def test_registered_literal_secret_is_removed_but_short_values_are_ignored() -> None:
    redactor = Redactor(["s3cr3t-value", "ab"])
    assert redactor("x s3cr3t-value y ab") == f"x {REDACTED} y ab"


@given(prefix=st.text(max_size=40), suffix=st.text(max_size=40))
def test_token_is_removed_whatever_surrounds_it(prefix: str, suffix: str) -> None:
    # a digit or token character glued to the token changes what a token is, so separate it
    assert BOT_TOKEN not in Redactor()(f"{prefix} {BOT_TOKEN} {suffix}")


def test_stdlib_records_are_rewritten_with_their_arguments() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: %s", (f"/bot{BOT_TOKEN}/getMe",), None
    )
    assert RedactingFilter().filter(record)
    assert BOT_TOKEN not in record.getMessage()
