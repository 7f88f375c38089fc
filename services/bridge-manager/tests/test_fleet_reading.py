"""Reading the fleet from a real nats-server: delivery window, queue figures, desired-state CAS."""

from __future__ import annotations

import asyncio
from typing import Any

from cctelegram_bridge_manager.fleet import DeliveryWindow, DesiredStateStore, read_queue
from cctelegram_common import subjects
from cctelegram_common.contracts.outbox import DeliveryOutcome, DeliveryReported, Operation


def report(number: int, outcome: DeliveryOutcome) -> bytes:
    return (
        DeliveryReported(
            outbox_id=f"o-{number}",
            event_id=None,
            chat_id=1,
            operation=Operation.SEND_MESSAGE,
            outcome=outcome,
        )
        .model_dump_json()
        .encode()
    )


async def test_the_window_counts_reports_from_before_and_after_it_started(
    fleet: Any, poll: Any
) -> None:
    for number in range(3):
        await fleet.js.publish(subjects.DELIVERY_REPORTED, report(number, DeliveryOutcome.SENT))
    window = DeliveryWindow()
    await window.start(fleet.js)
    try:
        assert window.last_report_at is not None
        await fleet.js.publish(subjects.DELIVERY_REPORTED, report(3, DeliveryOutcome.FAILED))
        await fleet.enqueue(4, chat_id=77, prefix="fig")

        async def figures() -> Any:
            return await read_queue(fleet.js, window)

        queue = await poll(figures, lambda answer: answer.failed_last_minute == 1, timeout_s=10)
        assert queue.delivered_last_minute == 3
        assert queue.delivery_rate_per_s == round(3 / 60, 2)
        assert queue.depth == 4
        assert queue.in_flight == 0
    finally:
        await window.stop()


async def test_concurrent_desired_writes_never_overwrite_blindly(fleet: Any) -> None:
    store = DesiredStateStore(fleet.kv)
    state, revision = await store.read()
    assert state.paused is False
    assert revision is None
    # Ten writers at once: each write names the revision it read, so most find it stale;
    # they read again and retry instead of failing or overwriting blindly.
    await asyncio.gather(
        *(store.set_paused(number % 2 == 0, f"writer-{number}") for number in range(10))
    )
    final, revision = await store.read()
    assert revision is not None
    history = await fleet.js.stream_info(f"KV_{subjects.KV_BRIDGE}")
    assert history.state.last_seq == 10  # every writer landed exactly once
    assert final.changed_by is not None
    await fleet.kv.delete(subjects.BRIDGE_KEY_DESIRED)
    assert (await store.read())[1] is None
    assert (await store.set_paused(True, "after-delete")).paused
    assert (await store.read())[0].changed_by == "after-delete"
