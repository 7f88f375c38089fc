"""Signed ``callback_data`` for approval buttons: ``<approval_id>.<token>.<mac>`` ≤ 64 bytes.

``approval_id`` is 32 hex characters, ``token`` the option index (``0``-``9``), ``mac`` the
first 16 characters of base64url(HMAC-SHA256(secret, "<approval_id>.<token>")) — 96 bits,
so altered or forged data is refused. The secret is shared by every events replica.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import secrets

from cctelegram_common import subjects
from cctelegram_events.ports import CasConflictError, KvStore

MAC_CHARS = 16
MAX_CALLBACK_BYTES = 64
_SHAPE = re.compile(r"^([0-9a-f]{32})\.([0-9]{1,2})\.([A-Za-z0-9_-]{16})$")
# Mode buttons of ``/mode``: ``mode.<client ref | default>.<choice>.<mac>`` (≤ 36 bytes).
MODE_PREFIX = "mode."
_MODE_SHAPE = re.compile(r"^mode\.(default|[0-9a-f]{12})\.([0-9])\.([A-Za-z0-9_-]{16})$")
# Revoke buttons of ``/rules``: ``rule.<rule id = the approval that created it>.<mac>`` (54 bytes).
RULE_PREFIX = "rule."
_RULE_SHAPE = re.compile(r"^rule\.([0-9a-f]{32})\.([A-Za-z0-9_-]{16})$")


class CallbackSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the callback secret must be at least 16 bytes")
        self._secret = secret

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]

    def sign(self, approval_id: str, option_index: int) -> str:
        payload = f"{approval_id}.{option_index}"
        data = f"{payload}.{self._mac(payload)}"
        if len(data.encode()) > MAX_CALLBACK_BYTES:
            raise ValueError("callback_data would exceed 64 bytes")
        return data

    def verify(self, data: str) -> tuple[str, int] | None:
        """``(approval_id, option_index)`` when the data is ours and unaltered, else None."""
        match = _SHAPE.match(data or "")
        if match is None:
            return None
        approval_id, token, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(f"{approval_id}.{token}")):
            return None
        return approval_id, int(token)

    def sign_mode(self, ref: str, choice: int) -> str:
        payload = f"{MODE_PREFIX}{ref}.{choice}"
        return f"{payload}.{self._mac(payload)}"

    def verify_mode(self, data: str) -> tuple[str, int] | None:
        """``(client ref or "default", choice)`` of a mode button, when unaltered."""
        match = _MODE_SHAPE.match(data or "")
        if match is None:
            return None
        ref, choice, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(f"{MODE_PREFIX}{ref}.{choice}")):
            return None
        return ref, int(choice)

    def sign_rule(self, rule_id: str) -> str:
        payload = f"{RULE_PREFIX}{rule_id}"
        return f"{payload}.{self._mac(payload)}"

    def verify_rule(self, data: str) -> str | None:
        """The rule id of a revoke button, when unaltered."""
        match = _RULE_SHAPE.match(data or "")
        if match is None:
            return None
        rule_id, mac = match.groups()
        if not hmac.compare_digest(mac, self._mac(f"{RULE_PREFIX}{rule_id}")):
            return None
        return rule_id


async def shared_secret(state_kv: KvStore, configured: bytes | None) -> bytes:
    """The configured secret, else one generated once and kept in ``cctg_state`` so every
    replica signs and verifies alike (dev mode: anyone who can read the bucket can read it)."""
    if configured:
        return configured
    key = subjects.STATE_KEY_CALLBACK_SECRET
    entry = await state_kv.get(key)
    if entry is None:
        # Another replica may generate it first; then we use theirs.
        with contextlib.suppress(CasConflictError):
            await state_kv.create(key, secrets.token_hex(32).encode())
        entry = await state_kv.get(key)
    if entry is None:
        raise RuntimeError("could not read the shared callback secret")
    return entry.value
