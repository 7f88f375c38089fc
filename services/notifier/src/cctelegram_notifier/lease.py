"""The getUpdates lease: at most one notifier replica polls Telegram at a time.

KV ``cctg_bridge`` key ``poller.lease`` holds the holder's instance id with a per-key TTL.
The holder renews it with compare-and-set on the revision every ``ttl/4``. A contender that
sees the same revision unchanged for ``ttl - check`` seconds (its own clock, so clock skew
between machines does not matter) takes it over with compare-and-set on that revision.
The holder considers itself leader only until ``renewal sent + ttl - 3·check`` and a
contender waits ``ttl - 2·check``: the holder's last long poll has ended before anybody else
can start one, and a dead holder is replaced within the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from cctelegram_common import subjects
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import KvConflictError, kv_put_with_ttl
from cctelegram_notifier import metrics

log = get_logger(__name__)


class PollerLease:
    def __init__(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        instance_id: str,
        *,
        ttl_s: float,
        check_s: float,
        clock: Callable[[], float] = time.monotonic,
        key: str = subjects.BRIDGE_KEY_POLLER_LEASE,
        bucket: str = subjects.KV_BRIDGE,
    ) -> None:
        self.js = js
        self.kv = kv
        self.instance_id = instance_id
        self.ttl_s = ttl_s
        self.check_s = min(check_s, ttl_s / 8)
        self.clock = clock
        self.key = key
        self.bucket = bucket
        self.valid_until = 0.0
        self.term = 0  # incremented on every acquisition: a new term re-reads the offset
        self.changed = asyncio.Event()
        self._revision = 0
        self._renew_at = 0.0
        self._observed: tuple[int, float] | None = None

    @property
    def held(self) -> bool:
        return self.clock() < self.valid_until

    def remaining_s(self) -> float:
        return max(0.0, self.valid_until - self.clock())

    async def _read(self) -> tuple[str | None, int]:
        """(holder, revision); (None, revision-or-0) when absent, deleted or expired."""
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError as error:
            revision = getattr(getattr(error, "entry", None), "revision", None)
            return None, int(revision or 0)
        holder = entry.value.decode() if entry.value else None
        return holder, int(entry.revision or 0)

    async def _write(self, expected_revision: int) -> bool:
        sent_at = self.clock()
        try:
            self._revision = await kv_put_with_ttl(
                self.js,
                self.bucket,
                self.key,
                self.instance_id.encode(),
                self.ttl_s,
                expected_revision=expected_revision,
            )
        except (KvConflictError, nats.js.errors.APIError):
            return False  # somebody else wrote first
        self.valid_until = sent_at + self.ttl_s - 3 * self.check_s
        self._renew_at = sent_at + self.ttl_s / 4
        return True

    async def step(self) -> None:
        """One look at the lease: create, renew or take it over when it is due."""
        was_held = self.held
        holder, revision = await self._read()
        now = self.clock()
        if holder == self.instance_id and revision == self._revision and was_held:
            written = now < self._renew_at or await self._write(revision)
        elif holder is None or holder == self.instance_id:
            # Free, or our own id at a revision we did not write (restart with a fixed id).
            written = await self._write(revision)
        else:
            if self._observed is None or self._observed[0] != revision:
                self._observed = (revision, now)
            stale_for = now - self._observed[1]
            written = stale_for >= self.ttl_s - 2 * self.check_s and await self._write(revision)
        if written:
            self._observed = None
        else:
            self.valid_until = 0.0
        if self.held != was_held:
            if self.held:
                self.term += 1
            metrics.POLLER_LEADER.set(1 if self.held else 0)
            log.info("poller_lease", held=self.held, instance=self.instance_id)
            self.changed.set()

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.step()
            except (nats.errors.Error, nats.js.errors.Error, OSError) as error:
                log.warning("poller_lease_check_failed", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.check_s)

    async def release(self) -> None:
        """On a clean stop: delete the lease so another replica takes over at once."""
        if not self.held:
            return
        self.valid_until = 0.0
        metrics.POLLER_LEADER.set(0)
        with contextlib.suppress(Exception):
            await self.kv.delete(self.key, last=self._revision)
