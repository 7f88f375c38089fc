"""The API key format ``cctg_<key id>_<secret>``: generation and parsing (never storage)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "cctg"
# 12 base62-ish chars of id (lookup), 32 url-safe bytes of secret (256 bits ≥ the 128 asked).
_KEY_PATTERN = re.compile(r"^cctg_(?P<key_id>[A-Za-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_ID_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    secret: str = ""

    @property
    def full(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:  # never print the secret by accident
        return f"ApiKey(key_id={self.key_id!r}, secret=***)"


def generate_key() -> ApiKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    return ApiKey(key_id=key_id, secret=secrets.token_urlsafe(32))


def parse_key(presented: str) -> ApiKey | None:
    """The key's parts, or None when it is not even shaped like one of our keys."""
    match = _KEY_PATTERN.match(presented.strip())
    if match is None:
        return None
    return ApiKey(key_id=match["key_id"], secret=match["secret"])
