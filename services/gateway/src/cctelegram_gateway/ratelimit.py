"""Per-key token buckets: ``limit`` calls per minute, refilled continuously, shared by every
gateway replica through a KV bucket (``cctg_ratelimits``), with leases so most calls stay local.

The budget of a key is one token bucket in ``cctg_ratelimits[<key id>]``: tokens left and when
that was computed (wall clock), refilled at ``limit / 60`` per second up to ``limit``. A replica
does not ask NATS for every call: it takes a **lease** of a few tokens at a time (about one
second of refill, at most ``MAX_LEASE``) by compare-and-set on the entry's revision, and spends
them locally. Unspent leased tokens are dropped after ``lease_ttl_s``: over any interval T a key
gets at most ``limit + limit/60 · T`` calls plus, at worst, one unexpired lease per replica.
A refusal is local too: no token can exist before the computed refill time, so calls until
then are refused without a round trip. When the bucket cannot be reached, each replica falls
back to its own bucket (the behaviour before the shared budget) and counts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import nats.js.errors
from nats.js.kv import KeyValue

from cctelegram_common.contracts.auth import Principal, Role
from cctelegram_common.logging import get_logger

log = get_logger(__name__)

MAX_LEASE = 50
CAS_ATTEMPTS = 8
_KEY_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class _Bucket:
    capacity: float
    tokens: float
    updated_at: float


class RateLimiter:
    """One process's own buckets: the fallback when the shared budget cannot be reached."""

    def __init__(
        self,
        agent_default_per_minute: int | None = 600,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = 100_000,
    ) -> None:
        self.agent_default_per_minute = agent_default_per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self.max_buckets = max_buckets

    def limit_of(self, principal: Principal) -> int | None:
        """The key's own limit; else agents get the configured default, others none."""
        if principal.rate_limit_per_minute is not None:
            return principal.rate_limit_per_minute
        if principal.role is Role.AGENT:
            return self.agent_default_per_minute
        return None

    def take(self, principal: Principal) -> float | None:
        """Spend one token. None when allowed, else the seconds until one is available."""
        limit = self.limit_of(principal)
        if limit is None:
            return None
        now = self._clock()
        bucket = self._buckets.get(principal.key_id)
        if bucket is None or bucket.capacity != limit:
            if len(self._buckets) >= self.max_buckets:
                self._buckets.clear()  # bounded memory; worst case a full bucket again
            bucket = _Bucket(capacity=float(limit), tokens=float(limit), updated_at=now)
            self._buckets[principal.key_id] = bucket
        rate_per_s = limit / 60.0
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.updated_at) * rate_per_s)
        bucket.updated_at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate_per_s


class BudgetConflictError(Exception):
    """The entry changed since it was read (another replica took a lease)."""


class BudgetStore(Protocol):
    """Where the shared buckets live (a KV bucket; revisions for compare-and-set)."""

    async def get(self, key: str) -> tuple[bytes, int] | None: ...
    async def create(self, key: str, value: bytes) -> int: ...
    async def update(self, key: str, value: bytes, revision: int) -> int: ...


@dataclass
class _Lease:
    """This replica's share of one key's budget."""

    capacity: int
    tokens: float = 0.0
    expires_at: float = 0.0  # monotonic
    denied_until: float = 0.0  # monotonic: no token can exist before
    known: tuple[dict[str, float], int] | None = None  # last seen entry and its revision
    # Write on the last seen revision without reading first (one round trip a lease) until
    # another replica is seen writing too; then read first (two, but no failed write).
    optimistic: bool = True
    fetching: asyncio.Future[None] | None = field(default=None, repr=False)


def budget_key(key_id: str) -> str:
    if _KEY_SAFE.match(key_id):
        return key_id
    return "h" + hashlib.sha256(key_id.encode()).hexdigest()[:40]


def lease_size(limit: int, lease_s: float) -> int:
    """About ``lease_s`` of refill, at least 1, at most a quarter of the bucket and MAX_LEASE."""
    return max(1, min(int(limit / 60.0 * lease_s), limit // 4, MAX_LEASE))


class SharedRateLimiter:
    """The key's budget across all replicas (see the module docstring)."""

    def __init__(
        self,
        agent_default_per_minute: int | None = 600,
        *,
        lease_s: float = 1.0,
        lease_ttl_s: float = 2.0,
        timeout_s: float = 1.0,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
        on_fallback: Callable[[], None] | None = None,
    ) -> None:
        self.local = RateLimiter(agent_default_per_minute, monotonic, max_keys)
        self.store: BudgetStore | None = None  # set once NATS is connected
        self.lease_s = lease_s
        self.lease_ttl_s = lease_ttl_s
        self.timeout_s = timeout_s
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.max_keys = max_keys
        self.on_fallback = on_fallback
        self._leases: dict[str, _Lease] = {}

    def limit_of(self, principal: Principal) -> int | None:
        return self.local.limit_of(principal)

    async def take(self, principal: Principal) -> float | None:
        """Spend one token. None when allowed, else the seconds until one is available."""
        limit = self.limit_of(principal)
        if limit is None:
            return None
        if self.store is None:
            return self.local.take(principal)
        lease = self._leases.get(principal.key_id)
        if lease is None or lease.capacity != limit:
            if len(self._leases) >= self.max_keys:
                self._leases.clear()  # bounded memory; leases are re-taken from the budget
            lease = self._leases[principal.key_id] = _Lease(capacity=limit)
        while True:
            now = self.monotonic()
            if lease.tokens >= 1.0 and now < lease.expires_at:
                lease.tokens -= 1.0
                return None
            if now < lease.denied_until:
                return lease.denied_until - now
            if lease.fetching is not None:  # one lease request per key at a time
                await asyncio.shield(lease.fetching)
                continue
            lease.fetching = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(
                    self._acquire(budget_key(principal.key_id), limit, lease), self.timeout_s
                )
            except Exception as error:
                if self.on_fallback is not None:
                    self.on_fallback()
                log.warning("rate_limit_budget_unreachable", error=type(error).__name__)
                lease.known = None
                return self.local.take(principal)
            finally:
                lease.fetching.set_result(None)
                lease.fetching = None

    async def _acquire(self, key: str, limit: int, lease: _Lease) -> None:
        """Take a lease from the shared bucket, or record until when none can exist."""
        assert self.store is not None
        rate_per_s = limit / 60.0
        if not lease.optimistic:
            lease.known = None
        for _ in range(CAS_ATTEMPTS):
            if lease.known is None:
                loaded = await self.store.get(key)
                lease.known = (json.loads(loaded[0]), loaded[1]) if loaded else ({}, 0)
            entry, revision = lease.known
            now = self.wall_clock()
            if "t" in entry:  # a changed limit applies from now (capped, or refilling more)
                elapsed = max(0.0, now - entry["at"])
                tokens = min(float(limit), entry["t"] + elapsed * rate_per_s)
            else:  # a new key, or an entry the bucket's TTL removed: a full bucket
                tokens = float(limit)
            if tokens < 1.0:
                lease.denied_until = self.monotonic() + (1.0 - tokens) / rate_per_s
                return
            taken = min(lease_size(limit, self.lease_s), math.floor(tokens))
            value = {"t": tokens - taken, "at": now}
            encoded = json.dumps(value, separators=(",", ":")).encode()
            try:
                if revision == 0:
                    new_revision = await self.store.create(key, encoded)
                else:
                    new_revision = await self.store.update(key, encoded, revision)
            except BudgetConflictError:
                lease.known = None
                lease.optimistic = False
                continue
            lease.known = (value, new_revision)
            lease.tokens = float(taken)
            lease.expires_at = self.monotonic() + self.lease_ttl_s
            return
        raise BudgetConflictError(key)


class KvBudgetStore:
    """``BudgetStore`` over a JetStream KV bucket (nats-py ``KeyValue``)."""

    def __init__(self, bucket: KeyValue) -> None:
        self.bucket = bucket

    async def get(self, key: str) -> tuple[bytes, int] | None:
        try:
            entry = await self.bucket.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        if not entry.value or entry.revision is None:
            return None
        return entry.value, entry.revision

    async def create(self, key: str, value: bytes) -> int:
        try:
            revision: int = await self.bucket.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise BudgetConflictError(key) from None
        return revision

    async def update(self, key: str, value: bytes, revision: int) -> int:
        try:
            new_revision: int = await self.bucket.update(key, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise BudgetConflictError(key) from None
        return new_revision
