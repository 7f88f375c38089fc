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

# PEM private keys (RSA, EC, OpenSSH, PKCS#8, encrypted): the whole block goes.
PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)",
    re.DOTALL,
)
# Well-known cloud and SaaS credentials, recognisable by their prefixes.
AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b")
GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")
SLACK_TOKEN = re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")
GOOGLE_API_KEY = re.compile(r"\bAIza[0-9A-Za-z_-]{35}")
# OpenAI / Anthropic (sk-..., sk-ant-...) and Stripe (sk_live_, rk_live_, ...) secret keys.
SECRET_KEY_PREFIXED = re.compile(
    r"\b(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})"
)
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# `password=...`, `api_key: ...`, `AWS_SECRET_ACCESS_KEY=...` style assignments: keep the
# name (it tells the reader what was there), hide the value.
SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(?P<name>[a-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key"
    r"|access[_-]?key|private[_-]?key))(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?!\[redacted\]|(?:true|false|null|none)\b)[^\s\"'&<>,;]{4,}"
)

_BASE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (PRIVATE_KEY, REDACTED),
    (BOT_TOKEN, REDACTED),
    (API_KEY, REDACTED),
    (URL_PASSWORD, r"\g<head>" + REDACTED),
    (BEARER, r"\1" + REDACTED),
    (AWS_ACCESS_KEY_ID, REDACTED),
    (GITHUB_TOKEN, REDACTED),
    (SLACK_TOKEN, REDACTED),
    (GOOGLE_API_KEY, REDACTED),
    (SECRET_KEY_PREFIXED, REDACTED),
    (JWT, REDACTED),
    (SECRET_ASSIGNMENT, r"\g<name>\g<sep>" + REDACTED),
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
