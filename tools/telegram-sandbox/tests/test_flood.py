"""Flood control on a manual clock: per private chat, per group, per bot; retry_after values."""

from __future__ import annotations

import pytest

from cctelegram_sandbox.config import ManualClock
from cctelegram_sandbox.errors import BotApiError
from cctelegram_sandbox.flood import FloodControl


def retry_after(flood: FloodControl, chat_id: int) -> int:
    with pytest.raises(BotApiError) as caught:
        flood.acquire(chat_id)
    error = caught.value
    assert error.error_code == 429
    assert error.parameters is not None
    seconds = int(error.parameters["retry_after"])
    assert error.description == f"Too Many Requests: retry after {seconds}"
    return seconds


def test_one_message_per_second_in_a_private_chat() -> None:
    clock = ManualClock()
    flood = FloodControl(clock)
    flood.acquire(42)
    clock.advance(0.2)
    assert retry_after(flood, 42) == 1
    flood.acquire(43)  # another chat is not affected
    clock.advance(0.8)
    flood.acquire(42)


def test_twenty_messages_per_minute_in_a_group() -> None:
    clock = ManualClock()
    flood = FloodControl(clock)
    for _ in range(20):
        flood.acquire(-100)
        clock.advance(0.5)  # under the global 30/s, so only the group limit bites
    # The first message was 10 s ago; its slot frees 50 s from now.
    assert retry_after(flood, -100) == 50
    clock.advance(49.5)
    assert retry_after(flood, -100) == 1
    clock.advance(0.5)
    flood.acquire(-100)


def test_thirty_messages_per_second_for_the_bot() -> None:
    clock = ManualClock()
    flood = FloodControl(clock)
    for chat_id in range(1, 31):
        flood.acquire(chat_id)
    clock.advance(0.25)
    assert retry_after(flood, 99) == 1
    clock.advance(0.75)
    flood.acquire(99)


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    clock = ManualClock()
    flood = FloodControl(clock, rate_scale=0.25)  # 1 message per 4 s in a private chat
    flood.acquire(7)
    clock.advance(0.5)
    assert retry_after(flood, 7) == 4
    clock.advance(2.0)
    assert retry_after(flood, 7) == 2


def test_rate_scale_multiplies_the_limits() -> None:
    clock = ManualClock()
    flood = FloodControl(clock, rate_scale=3)
    for _ in range(3):
        flood.acquire(42)
    assert retry_after(flood, 42) == 1


def test_disabled_flood_control_accepts_everything() -> None:
    flood = FloodControl(ManualClock(), enabled=False)
    for _ in range(1000):
        flood.acquire(42)


def test_global_penalty_answers_429_until_it_ends() -> None:
    clock = ManualClock()
    flood = FloodControl(clock)
    flood.set_global_penalty(7.5)
    assert retry_after(flood, 1) == 8
    clock.advance(7.5)
    flood.acquire(1)
    assert flood.rejections == 1


def test_paid_broadcast_lifts_the_global_limit_not_the_chat_limit() -> None:
    clock = ManualClock()
    flood = FloodControl(clock)
    for chat_id in range(1, 101):
        flood.acquire(chat_id, paid_broadcast=True)
    with pytest.raises(BotApiError):
        flood.acquire(1, paid_broadcast=True)
