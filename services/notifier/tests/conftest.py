"""Fixtures of the notifier tests: virtual time for the scheduler and the delivery policy."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from cctelegram_common import streams, subjects
from cctelegram_notifier.runtime import NotifierRuntime
from cctelegram_notifier.settings import NotifierSettings
from cctelegram_testing.nats import NatsServer


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


# --- integration: a NATS server of this package's own, the sandbox, the notifier runtime --------


@pytest.fixture(scope="module")
def module_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A nats-server for one test module: the outbox is a work queue with one durable
    consumer, so notifier tests must not share it with the rest of the suite."""
    with NatsServer(Path(tmp_path_factory.mktemp("notifier-nats"))) as server:
        yield server


@pytest.fixture
async def nc(module_nats: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(module_nats.url)
    js = connection.jetstream()
    await streams.provision(js)
    for stream in (
        subjects.STREAM_OUTBOX,
        subjects.STREAM_DELIVERIES,
        subjects.STREAM_DEAD_LETTER,
        subjects.STREAM_UPDATES,
        f"KV_{subjects.KV_DELIVERIES}",
        f"KV_{subjects.KV_BRIDGE}",
    ):
        await js.purge_stream(stream)
    yield connection
    await connection.close()


@pytest.fixture
def make_settings() -> Any:
    return notifier_settings


def notifier_settings(sandbox: Any, **overrides: Any) -> NotifierSettings:
    fields: dict[str, Any] = {
        "bot_token": sandbox.token,
        "api_base_url": sandbox.url,
        "rate_scale": 10.0,
        "polling": {"enabled": False},
        "retry": {"base_s": 0.05, "cap_s": 0.5, "breaker_reset_s": 0.5},
        "heartbeat_interval_s": 0.5,
        # These tests look at each outbox message's own call; test_coalescing turns it on.
        "coalesce": {"enabled": False},
        **overrides,
    }
    return NotifierSettings(**fields)


@pytest.fixture
async def start_notifier(nc: Client) -> AsyncIterator[Any]:
    """Start NotifierRuntime instances in this process; all stopped at teardown."""
    runtimes: list[NotifierRuntime] = []

    async def start(settings: NotifierSettings) -> NotifierRuntime:
        runtime = NotifierRuntime(settings)
        await runtime.start(nc.jetstream())
        runtimes.append(runtime)
        return runtime

    yield start
    for runtime in runtimes:
        await runtime.stop()
