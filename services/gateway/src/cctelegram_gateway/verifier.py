"""Who is calling: asks the auth service, remembers the answer briefly, forgets on a broadcast.

Cache entries are keyed by a keyed digest of the presented key (the raw key is never kept),
and indexed by key id so a ``KeyChanged`` broadcast drops every entry of that key at once.
A verify that was in flight while its key changed is not cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cctelegram_common.apikeys import parse_key
from cctelegram_common.contracts.auth import Principal, VerifyResponse

AskAuth = Callable[[str, str | None], Awaitable[VerifyResponse]]


class AuthUnavailableError(Exception):
    """The auth service did not answer: the caller gets 503, not 401."""


@dataclass(frozen=True)
class _Entry:
    response: VerifyResponse
    expires_at: float
    key_id: str


class Verifier:
    def __init__(
        self,
        ask: AskAuth,
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 2.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ask = ask
        self.ttl_s = ttl_s
        self.negative_ttl_s = negative_ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._salt = secrets.token_bytes(32)
        self._entries: dict[bytes, _Entry] = {}
        self._by_key_id: dict[str, set[bytes]] = {}
        self._changed_at: dict[str, float] = {}
        self._cleared_at = -1.0
        self._in_flight: dict[bytes, asyncio.Future[VerifyResponse]] = {}
        self.hits = 0
        self.misses = 0

    def _digest(self, presented: str) -> bytes:
        return hashlib.blake2b(presented.encode(), key=self._salt, digest_size=16).digest()

    async def verify(self, presented: str, request_id: str | None = None) -> VerifyResponse:
        parsed = parse_key(presented)
        if parsed is None:  # no need to bother auth with what cannot be a key
            return VerifyResponse(valid=False, reason="malformed")
        digest = self._digest(presented)
        now = self._clock()
        entry = self._entries.get(digest)
        if entry is not None and entry.expires_at > now:
            self.hits += 1
            return entry.response
        pending = self._in_flight.get(digest)
        if pending is not None:  # one RPC per key however many callers arrive at once
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[VerifyResponse] = asyncio.get_running_loop().create_future()
        self._in_flight[digest] = future
        asked_at = self._clock()
        try:
            try:
                response = await self.ask(presented, request_id)
            except Exception as error:
                raise AuthUnavailableError(str(error)) from None
            if not self._changed_since(parsed.key_id, asked_at):
                self._store(digest, parsed.key_id, response)
            future.set_result(response)
            return response
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # consumed: nobody else may be waiting
            raise
        finally:
            del self._in_flight[digest]

    def _changed_since(self, key_id: str, moment: float) -> bool:
        return self._changed_at.get(key_id, -1.0) >= moment or self._cleared_at >= moment

    def _store(self, digest: bytes, key_id: str, response: VerifyResponse) -> None:
        ttl = self.ttl_s if response.valid else self.negative_ttl_s
        if ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self.clear()
        expires_at = self._clock() + ttl
        principal: Principal | None = response.principal
        if principal is not None and principal.expires_at is not None:
            # Never trust a key in the cache past its own expiry.
            remaining = principal.expires_at.timestamp() - time.time()
            expires_at = min(expires_at, self._clock() + max(0.0, remaining))
        self._entries[digest] = _Entry(response, expires_at, key_id)
        self._by_key_id.setdefault(key_id, set()).add(digest)

    def forget(self, key_id: str) -> None:
        """A key changed (revoked, rotated...): drop it now; in-flight answers are not kept."""
        self._changed_at[key_id] = self._clock()
        for digest in self._by_key_id.pop(key_id, set()):
            self._entries.pop(digest, None)
        if len(self._changed_at) > self.max_entries:
            self._changed_at.clear()
            self._cleared_at = self._clock()

    def clear(self) -> None:
        self._entries.clear()
        self._by_key_id.clear()
        self._cleared_at = self._clock()

    def __len__(self) -> int:
        return len(self._entries)
