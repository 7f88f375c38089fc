"""Per-key token buckets: ``limit`` calls per minute, refilled continuously, per replica."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cctelegram_common.contracts.auth import Principal, Role


@dataclass
class _Bucket:
    capacity: float
    tokens: float
    updated_at: float


class RateLimiter:
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
