"""Removes secrets (bot tokens, API keys, passwords in URLs, configured values) from text."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"

# Telegram bot tokens: `<bot id>:<35 chars>`; they sit inside every Bot API URL, glued to
# the `bot` prefix, so no word boundary before them.
BOT_TOKEN = re.compile(r"(?<!\d)\d{5,16}:[A-Za-z0-9_-]{30,}")
# Our own API keys: cctg_<key id>_<secret>.
API_KEY = re.compile(r"cctg_[A-Za-z0-9]{6,}_[A-Za-z0-9_-]{16,}")
# Credentials inside URLs: scheme://user:password@host
URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)")
BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")

_BASE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (BOT_TOKEN, REDACTED),
    (API_KEY, REDACTED),
    (URL_PASSWORD, r"\g<head>" + REDACTED),
    (BEARER, r"\1" + REDACTED),
)


class Redactor:
    """Applies the built-in patterns plus literal secrets registered at start-up."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        self._literals: set[str] = set()
        self._literal_pattern: re.Pattern[str] | None = None
        self.add(*literals)

    def add(self, *literals: str) -> None:
        # Very short values would redact ordinary words; a secret is never that short.
        self._literals.update(value for value in literals if value and len(value) >= 6)
        if self._literals:
            alternatives = sorted(self._literals, key=len, reverse=True)
            self._literal_pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def __call__(self, text: str) -> str:
        if self._literal_pattern is not None:
            text = self._literal_pattern.sub(REDACTED, text)
        for pattern, replacement in _BASE_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


# The process-wide redactor every log line passes through.
redactor = Redactor()


def redact(text: str) -> str:
    return redactor(text)


def register_secret(*values: str) -> None:
    """Make every later log line hide these literal values."""
    redactor.add(*values)
