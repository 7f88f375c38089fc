"""The shared token bucket with a store in memory: one budget for several replicas, leases so
most calls stay local, local refusals, refill, and the fallback when the store is away."""

from __future__ import annotations

import asyncio

import pytest

from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_gateway.ratelimit import BudgetConflictError, SharedRateLimiter, lease_size


class MemoryStore:
    """``BudgetStore`` with JetStream KV's revision rules; counts the round trips."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[bytes, int]] = {}
        self.revision = 0
        self.calls = 0
        self.broken = False

    async def get(self, key: str) -> tuple[bytes, int] | None:
        self._call()
        return self.entries.get(key)

    async def create(self, key: str, value: bytes) -> int:
        self._call()
        if key in self.entries:
            raise BudgetConflictError(key)
        return self._put(key, value)

    async def update(self, key: str, value: bytes, revision: int) -> int:
        self._call()
        if key not in self.entries or self.entries[key][1] != revision:
            raise BudgetConflictError(key)
        return self._put(key, value)

    def _call(self) -> None:
        self.calls += 1
        if self.broken:
            raise ConnectionError("no NATS")

    def _put(self, key: str, value: bytes) -> int:
        self.revision += 1
        self.entries[key] = (value, self.revision)
        return self.revision


class Clocks:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 100.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def principal(limit: int | None, key_id: str = "k1") -> Principal:
    return Principal(
        client_id="c",
        key_id=key_id,
        role=Role.AGENT,
        permissions=ROLE_PERMISSIONS[Role.AGENT],
        rate_limit_per_minute=limit,
    )


def replicas(store: MemoryStore, clocks: Clocks, count: int = 2) -> list[SharedRateLimiter]:
    made = []
    for _ in range(count):
        limiter = SharedRateLimiter(
            600, wall_clock=lambda: clocks.wall, monotonic=lambda: clocks.mono
        )
        limiter.store = store
        made.append(limiter)
    return made


async def test_replicas_share_one_budget_and_most_calls_stay_local() -> None:
    store, clocks = MemoryStore(), Clocks()
    caller = principal(600)
    limiters = replicas(store, clocks, 3)
    outcomes = [await limiters[i % 3].take(caller) for i in range(2000)]
    assert outcomes.count(None) == 600  # not 3 x 600
    assert lease_size(600, 1.0) == 10
    # A lease of 10 per KV write (a read and a write once replicas are seen competing); the
    # refused calls are answered locally (no token can exist before the refill time).
    assert store.calls <= 600 / 10 * 2 + 3 * 3
    refused = [o for o in outcomes if o is not None]
    assert all(0 < retry_after <= 0.1 + 1e-9 for retry_after in refused)  # 10 tokens/s


async def test_the_budget_refills_at_the_limit_rate() -> None:
    store, clocks = MemoryStore(), Clocks()
    caller = principal(60)  # one a second
    first, second = replicas(store, clocks)
    assert [await first.take(caller) for _ in range(60)] == [None] * 60
    retry_after = await second.take(caller)
    assert retry_after == pytest.approx(1.0)
    clocks.advance(3.0)
    allowed = [await limiter.take(caller) for limiter in (first, second) for _ in range(3)]
    assert allowed.count(None) == 3


async def test_unspent_leased_tokens_expire_rather_than_add_up() -> None:
    store, clocks = MemoryStore(), Clocks()
    caller = principal(600)
    first, second = replicas(store, clocks)
    assert await first.take(caller) is None  # leases 10, spends 1
    clocks.mono += 5.0  # past the lease TTL, but no wall time: no refill
    granted = sum(
        [await limiter.take(caller) is None for limiter in (first, second) for _ in range(700)]
    )
    assert granted == 600 - 10  # the 9 leased and unspent were dropped, never granted twice


async def test_concurrent_calls_take_one_lease_at_a_time() -> None:
    store, clocks = MemoryStore(), Clocks()
    caller = principal(600)
    (limiter,) = replicas(store, clocks, 1)
    outcomes = await asyncio.gather(*(limiter.take(caller) for _ in range(30)))
    assert outcomes.count(None) == 30
    assert store.calls == 1 + 3  # alone on the key: a read, then one write per lease of 10


async def test_no_limit_no_store_and_an_unreachable_store_falls_back_to_this_replica() -> None:
    store, clocks = MemoryStore(), Clocks()
    fallbacks: list[int] = []
    limiter = SharedRateLimiter(
        600,
        wall_clock=lambda: clocks.wall,
        monotonic=lambda: clocks.mono,
        on_fallback=lambda: fallbacks.append(1),
    )
    unlimited = Principal(
        client_id="a",
        key_id="admin",
        role=Role.ADMIN,
        permissions=ROLE_PERMISSIONS[Role.ADMIN],
    )
    assert await limiter.take(unlimited) is None
    assert [await limiter.take(principal(2)) for _ in range(2)] == [None, None]  # no store yet
    assert await limiter.take(principal(2)) is not None
    limiter.store = store
    store.broken = True
    caller = principal(3, "k2")
    outcomes = [await limiter.take(caller) for _ in range(4)]
    assert outcomes[:3] == [None] * 3
    assert outcomes[3] is not None  # the replica's own bucket still limits
    assert fallbacks
    assert store.calls == len(fallbacks)
