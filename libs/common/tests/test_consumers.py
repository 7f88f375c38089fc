"""Durable consumers against a real nats-server: prompt, ordered, settled one by one."""

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import nats
import pytest
from opentelemetry import trace
from pydantic import BaseModel
from structlog.contextvars import get_contextvars

from cctelegram_common.consumers import (
    BatchItem,
    Durable,
    DurableConsumer,
    Outcome,
    next_fetch_size,
    settle,
)


class Note(BaseModel):
    n: int


class FakeMessage:
    """The part of a nats-py ``Msg`` that ``settle`` uses."""

    def __init__(self, delivered: int) -> None:
        self.metadata = type("Meta", (), {"num_delivered": delivered})
        self.outcome: tuple[str, float | None] | None = None

    async def ack(self) -> None:
        self.outcome = ("ack", None)

    async def nak(self, delay: float | None = None) -> None:
        self.outcome = ("nack", delay)


async def test_settle_acks_success_and_hands_failures_back_later_each_time() -> None:
    async def works() -> None:
        return None

    async def fails() -> None:
        raise TimeoutError("outbox stream has no leader")

    done = FakeMessage(1)
    assert await settle(done, works)  # type: ignore[arg-type]
    assert done.outcome == ("ack", None)

    for delivered in (1, 5, 40):
        failed = FakeMessage(delivered)
        assert not await settle(failed, fails, base_delay_s=0.5, max_delay_s=30)  # type: ignore[arg-type]
        assert failed.outcome is not None
        kind, delay = failed.outcome
        assert kind == "nack"
        assert delay is not None
        assert 0.5 <= delay <= 30  # never an immediate redelivery that burns MaxDeliver


async def test_a_lone_message_is_handled_without_waiting_for_a_full_batch(nats_url: str) -> None:
    """The fetch timeout is far longer than the test's patience: a consumer that waited for
    a full batch (FastStream's batch mode did) would never get there."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"T{uuid.uuid4().hex[:8]}", f"test.{uuid.uuid4().hex}"
    await js.add_stream(name=stream, subjects=[subject])
    seen: list[int] = []
    failed_once: set[int] = set()
    got_all = asyncio.Event()

    async def work(note: Note) -> None:
        if note.n == 2 and note.n not in failed_once:
            failed_once.add(note.n)
            raise RuntimeError("a dependency is down for a moment")
        seen.append(note.n)
        if {1, 2, 3} <= set(seen):
            got_all.set()

    durable = Durable(stream=stream, subject=subject, name="test-durable", model=Note, work=work)
    consumer = DurableConsumer(js, durable, fetch_timeout_s=60)
    await consumer.start()
    try:
        await js.publish(subject, Note(n=1).model_dump_json().encode())
        await js.publish(subject, b"not json at all")  # terminated, never blocks the rest
        await js.publish(subject, Note(n=2).model_dump_json().encode())
        await js.publish(subject, Note(n=3).model_dump_json().encode())
        await asyncio.wait_for(got_all.wait(), 20)
        # The last ack follows the handler's return: wait for the server to have it (a busy
        # machine may not have sent it yet when ``got_all`` is set), then stop.
        for _ in range(200):
            info = await js.consumer_info(stream, "test-durable")
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
    assert seen[0] == 1
    assert sorted(seen) == [1, 2, 3]  # 2 came back after its delayed redelivery
    info = await js.consumer_info(stream, "test-durable")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    await nc.close()


async def test_after_a_backlog_a_lone_message_does_not_wait_for_company(nats_url: str) -> None:
    """A backlog is taken in batches; afterwards each lone message is handled on its own
    (the fetch timeout is far beyond the wait, so none may sit waiting for company)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"T{uuid.uuid4().hex[:8]}", f"test.{uuid.uuid4().hex}"
    await js.add_stream(name=stream, subjects=[subject])
    seen: list[int] = []
    arrived: dict[int, asyncio.Event] = {}

    async def work(note: Note) -> None:
        seen.append(note.n)
        arrived.setdefault(note.n, asyncio.Event()).set()

    for n in range(40):
        await js.publish(subject, Note(n=n).model_dump_json().encode())
    consumer = DurableConsumer(
        js,
        Durable(stream=stream, subject=subject, name="test-backlog", model=Note, work=work),
        fetch_timeout_s=60,
    )
    await consumer.start()
    try:
        await asyncio.wait_for(arrived.setdefault(39, asyncio.Event()).wait(), 20)
        for n in (100, 101, 102):  # one at a time, each alone in the stream
            await asyncio.sleep(0.05)
            await js.publish(subject, Note(n=n).model_dump_json().encode())
            await asyncio.wait_for(arrived.setdefault(n, asyncio.Event()).wait(), 20)
    finally:
        await consumer.stop()
        await nc.close()
    assert seen == [*range(40), 100, 101, 102]


async def test_a_batch_handler_settles_each_message_by_its_own_outcome(nats_url: str) -> None:
    """One call per fetched batch; a failed item comes back later on its own, an
    undecodable one is terminated, and a handler that fails as a whole loses nothing."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    stream, subject = f"T{uuid.uuid4().hex[:8]}", f"test.{uuid.uuid4().hex}"
    await js.add_stream(name=stream, subjects=[subject])
    batches: list[list[int]] = []
    done: list[int] = []
    failed_once: set[int] = set()

    async def in_its_context(item: BatchItem[Note]) -> tuple[object, bool]:
        return get_contextvars().get("request_id"), trace.get_current_span() is item.span

    async def work(items: Sequence[BatchItem[Note]]) -> list[Outcome]:
        batches.append([item.value.n for item in items])
        for item in items:  # each item's steps see its own span and request id
            request_id, span_is_current = await item.run(in_its_context(item))
            assert span_is_current
            assert request_id == f"req-{item.value.n}"
        if [item.value.n for item in items] == [7] and 7 not in failed_once:
            failed_once.add(7)
            raise RuntimeError("the whole batch failed")
        outcomes: list[Outcome] = []
        for item in items:
            if item.value.n == 2 and item.value.n not in failed_once:
                failed_once.add(item.value.n)
                outcomes.append(RuntimeError("not now"))
                continue
            done.append(item.value.n)
            outcomes.append(None)
        return outcomes

    for n in range(5):
        await js.publish(
            subject, Note(n=n).model_dump_json().encode(), headers={"X-Request-Id": f"req-{n}"}
        )
    await js.publish(subject, b"{broken")
    consumer = DurableConsumer(
        js,
        Durable(
            stream=stream,
            subject=subject,
            name="test-batch",
            model=Note,
            batch_work=work,
            linger_s=0.01,
        ),
        fetch_timeout_s=60,
    )
    await consumer.start()
    try:
        await asyncio.wait_for(_until(lambda: {0, 1, 2, 3, 4} <= set(done)), 20)
        await js.publish(
            subject, Note(n=7).model_dump_json().encode(), headers={"X-Request-Id": "req-7"}
        )
        await asyncio.wait_for(_until(lambda: 7 in done), 20)
    finally:
        await consumer.stop()
    assert sorted(done) == [0, 1, 2, 3, 4, 7]
    assert done.index(2) > done.index(4)  # handed back with a delay, not retried at once
    assert any(len(batch) > 1 for batch in batches)
    assert batches.count([7]) >= 2  # failed as a whole once, then handled
    info = await js.consumer_info(stream, "test-batch")
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    await nc.close()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def test_a_durable_takes_one_kind_of_work() -> None:
    async def one(_note: Note) -> None:
        return None

    async def many(_items: Sequence[BatchItem[Note]]) -> list[Outcome]:
        return []

    for work, batch_work in ((None, None), (one, many)):
        with pytest.raises(ValueError, match="either work or batch_work"):
            Durable(stream="S", subject="s", name="n", model=Note, work=work, batch_work=batch_work)


def test_the_next_fetch_asks_for_what_is_known_to_wait() -> None:
    def fetched(num_pending: int) -> list[Any]:
        return [type("Msg", (), {"metadata": type("Meta", (), {"num_pending": num_pending})})]

    assert next_fetch_size([], 100) == 1  # idle: one, so it is handed over the moment it comes
    assert next_fetch_size(fetched(0), 100) == 1
    assert next_fetch_size(fetched(42), 100) == 42
    assert next_fetch_size(fetched(5000), 100) == 100
