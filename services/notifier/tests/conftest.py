"""Fixtures of the notifier tests: virtual time for the scheduler and the delivery policy."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable
from typing import Any

import pytest


class VirtualClock:
    """A clock whose ``sleep`` waits for virtual time; ``run`` advances it only when every
    task is blocked, so rate-limit tests take milliseconds and are exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._sequence = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(seconds, 0.0), self._sequence, future))
        self._sequence += 1
        await future

    async def run(self, *awaitables: Awaitable[Any]) -> list[Any]:
        tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
        while True:
            for _ in range(30):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if all(task.done() for task in tasks):
                break
            while self._timers and self._timers[0][2].cancelled():
                heapq.heappop(self._timers)
            if not self._timers:
                raise RuntimeError("every task is blocked and no timer is pending")
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            future.set_result(None)
        return [task.result() for task in tasks]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()
