"""The scheduler never lets more through than Telegram allows, and pauses what a 429 names."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

from cctelegram_notifier.scheduler import Grant, PauseScope, Scheduler
from cctelegram_notifier.settings import RateSettings


def _scheduler(clock: Any, **rate: Any) -> Scheduler:
    return Scheduler(RateSettings(**rate), clock=clock, sleep=clock.sleep)


async def _at(scheduler: Scheduler, chat: int | None, **options: Any) -> float:
    """Acquire and immediately answer/release: the time the call was granted."""
    grant = await scheduler.acquire(chat, **options)
    scheduler.answered(grant)
    scheduler.release(grant)
    return grant.at


def _max_in_window(stamps: list[float], window_s: float) -> int:
    stamps = sorted(stamps)
    best, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_whole_bot_never_exceeds_30_in_any_sliding_second_and_is_paced(clock: Any) -> None:
    scheduler = _scheduler(clock)
    stamps = await clock.run(*(_at(scheduler, chat) for chat in range(1, 301)))
    assert _max_in_window(stamps, 1.0) <= 30
    gaps = [b - a for a, b in pairwise(sorted(stamps))]
    assert min(gaps) >= 0.75 / 30 - 1e-9  # evenly paced, never a burst
    # ...and it runs at the ceiling: 300 calls take about 10 s, not more.
    assert max(stamps) < 10.5


async def test_private_chat_gets_at_most_one_call_per_second(clock: Any) -> None:
    scheduler = _scheduler(clock)
    stamps = []
    for _ in range(5):
        (stamp,) = await clock.run(_at(scheduler, 42))
        stamps.append(stamp)
    gaps = [b - a for a, b in pairwise(stamps)]
    assert min(gaps) >= 1.0


async def test_group_gets_at_most_20_per_sliding_minute_one_per_second(clock: Any) -> None:
    scheduler = _scheduler(clock)

    async def drain(count: int) -> list[float]:
        return [await _at(scheduler, -100) for _ in range(count)]

    (stamps,) = await clock.run(drain(45))
    assert _max_in_window(stamps, 60.0) <= 20
    assert _max_in_window(stamps, 1.0) <= 1
    assert stamps[20] >= stamps[0] + 60.0


async def test_one_busy_chat_does_not_hold_back_the_others(clock: Any) -> None:
    scheduler = _scheduler(clock)

    async def busy() -> list[float]:
        return [await _at(scheduler, 7) for _ in range(10)]

    async def quiet(chat: int) -> float:
        await clock.sleep(0.5)
        return await _at(scheduler, chat)

    busy_stamps, *quiet_stamps = await clock.run(busy(), *(quiet(c) for c in range(100, 110)))
    assert busy_stamps[-1] >= 9.0
    assert max(quiet_stamps) < 1.0  # served at once, not after the busy chat's backlog


async def test_429_pauses_only_that_chat_for_retry_after(clock: Any) -> None:
    scheduler = _scheduler(clock, retry_after_pad_s=0.0)
    await clock.run(_at(scheduler, 1), _at(scheduler, 2))
    paused_at = clock.now
    assert scheduler.rate_limited(1, 3.0) is PauseScope.CHAT
    one, two = await clock.run(_at(scheduler, 1), _at(scheduler, 2))
    assert one >= paused_at + 3.0
    assert two < paused_at + 1.2  # chat 2 waits only for its own 1/s window (+ margin)


async def test_429s_spanning_chats_pause_the_whole_bot(clock: Any) -> None:
    scheduler = _scheduler(clock, retry_after_pad_s=0.0)
    scheduler.rate_limited(1, 5.0)
    assert scheduler.rate_limited(2, 5.0) is PauseScope.BOT
    (third,) = await clock.run(_at(scheduler, 3))
    assert third >= 5.0


async def test_429s_far_apart_stay_per_chat(clock: Any) -> None:
    scheduler = _scheduler(clock, retry_after_pad_s=0.0, escalate_window_s=2.0)
    scheduler.rate_limited(1, 1.0)
    await clock.run(clock.sleep(10))
    assert scheduler.rate_limited(2, 1.0) is PauseScope.CHAT
    (third,) = await clock.run(_at(scheduler, 3))
    assert third == clock.now


async def test_callback_answers_do_not_use_the_message_budget(clock: Any) -> None:
    scheduler = _scheduler(clock)
    await clock.run(*(_at(scheduler, chat) for chat in range(1, 31)))
    before = clock.now
    (answered,) = await clock.run(_at(scheduler, 5, counts=False))
    assert answered == before  # not delayed by the 30 calls in this second, nor by chat 5's
    scheduler.rate_limited(None, 2.0)
    (after_pause,) = await clock.run(_at(scheduler, 5, counts=False))
    assert after_pause >= before + 2.0  # but a whole-bot pause holds them too


async def test_rate_scale_multiplies_every_limit(clock: Any) -> None:
    scheduler = Scheduler(RateSettings(), 10.0, clock=clock, sleep=clock.sleep)
    stamps = await clock.run(*(_at(scheduler, chat) for chat in range(1, 601)))
    assert _max_in_window(stamps, 1.0) <= 300
    assert max(stamps) < 2.2


async def test_in_flight_cap_holds_calls_until_a_grant_is_released(clock: Any) -> None:
    scheduler = Scheduler(RateSettings(), clock=clock, sleep=clock.sleep, max_in_flight=2)
    grants: dict[int, Grant] = {}

    async def call(chat: int) -> None:
        grants[chat] = await scheduler.acquire(chat)

    await clock.run(call(1), call(2))
    third = asyncio.ensure_future(call(3))

    async def release_later() -> None:
        await clock.sleep(5.0)
        assert sorted(grants) == [1, 2]  # the third waited: two calls were out
        scheduler.release(grants[1])

    await clock.run(release_later(), third)
    assert sorted(grants) == [1, 2, 3]
    # Callback answers are not messages: no permit needed.
    await asyncio.wait_for(scheduler.acquire(4, counts=False), 1.0)


async def test_a_call_counts_until_its_answer_arrived(clock: Any) -> None:
    """Telegram may count a call late (a slow request): the window keeps it until answered."""
    scheduler = _scheduler(clock, retry_after_pad_s=0.0)
    slow = await scheduler.acquire(9)
    await clock.run(clock.sleep(0.8))
    scheduler.answered(slow)  # answered 0.8 s after the grant
    scheduler.release(slow)
    (next_call,) = await clock.run(_at(scheduler, 9))
    assert next_call >= slow.at + 0.8 + 1.0  # one per second, from when it was answered
