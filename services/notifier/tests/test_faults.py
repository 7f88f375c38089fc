"""Fault tests against the real sandbox with flood control on: every message ends delivered or
dead-lettered with the right reason, and no chat is called before its retry_after ends."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from nats.aio.client import Client

from cctelegram_common import subjects
from cctelegram_common.contracts.outbox import (
    DeadLetter,
    DeliveryOutcome,
    DeliveryReported,
    Operation,
    OutboxMessage,
)
from cctelegram_testing.notifier import (
    publish_outbox,
    sandbox_calls,
    sandbox_messages,
    stream_contracts,
    wait_until,
)
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

RETRY_AFTER = re.compile(r"retry after (\d+)")


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=10.0, auto_create_chats=True) as running:
        yield running


def _message(outbox_id: str, chat_id: int, text: str) -> OutboxMessage:
    return OutboxMessage(
        outbox_id=outbox_id, operation=Operation.SEND_MESSAGE, chat_id=chat_id, text=text
    )


async def _final_reports(nc: Client) -> dict[str, DeliveryReported]:
    reports = await stream_contracts(nc, subjects.STREAM_DELIVERIES, DeliveryReported)
    return {report.outbox_id: report for report in reports}


def assert_retry_after_honoured(calls: list[dict[str, Any]]) -> int:
    """No call to a chat before the retry_after of a 429 it got; returns how many 429s."""
    by_chat: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_chat[call["chat_id"]].append(call)
    limited = 0
    for chat_calls in by_chat.values():
        chat_calls.sort(key=lambda call: call["timestamp"])
        for index, call in enumerate(chat_calls):
            if call["status"] != 429:
                continue
            limited += 1
            retry_after = int(RETRY_AFTER.search(call["description"]).group(1))
            for later in chat_calls[index + 1 :]:
                assert later["timestamp"] >= call["timestamp"] + retry_after, (call, later)
    return limited


async def test_every_fault_ends_delivered_or_dead_lettered_with_its_reason(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    rate_limited, flaky, html_502, slow, dropped = 1001, 1002, 1003, 1004, 1005
    blocked, bad_entities, bad_request, quiet = 1006, 1007, 1008, 1009
    sandbox.create_chat(type="private", id=blocked, user={"id": blocked, "first_name": "B"})
    sandbox.set_state(blocked, "blocked")
    group = sandbox.create_chat(type="group", title="ops")["id"]
    migrated = sandbox.set_state(group, "migrated")["migrated_to"]["id"]
    sandbox.fault(
        method="sendMessage",
        chat_id=rate_limited,
        times=2,
        status=429,
        parameters={"retry_after": 2},
        description="Too Many Requests: retry after 2",
    )
    sandbox.fault(method="sendMessage", chat_id=flaky, times=2, status=500)
    sandbox.fault(
        method="sendMessage",
        chat_id=html_502,
        times=1,
        status=502,
        raw_body="<html><body>Bad Gateway</body></html>",
    )
    sandbox.fault(method="sendMessage", chat_id=slow, times=1, delay_s=2.0)
    sandbox.fault(method="sendMessage", chat_id=dropped, times=1, drop_connection_after_record=True)
    sandbox.fault(
        method="sendMessage",
        chat_id=bad_request,
        times=1,
        status=400,
        description="Bad Request: message is too long",
    )

    await start_notifier(make_settings(sandbox))
    chats = [rate_limited, flaky, html_502, slow, dropped, blocked, bad_request, quiet, group]
    expected: list[str] = []
    for round_ in range(2):
        for chat in chats:
            outbox_id = f"f-{chat}-{round_}"
            expected.append(outbox_id)
            await publish_outbox(nc, _message(outbox_id, chat, f"{chat} #{round_}"))
    await publish_outbox(nc, _message("f-entities", bad_entities, "<b>unclosed & bold"))
    expected.append("f-entities")

    async def all_final() -> bool:
        return len(await _final_reports(nc)) == len(expected)

    await wait_until(all_final, timeout_s=30)
    reports = await _final_reports(nc)
    failed = {oid: r for oid, r in reports.items() if r.outcome is DeliveryOutcome.FAILED}
    assert set(failed) == {f"f-{blocked}-0", f"f-{blocked}-1", f"f-{bad_request}-0"}
    assert failed[f"f-{blocked}-0"].error.startswith("recipient_gone: Forbidden: bot was blocked")
    assert failed[f"f-{blocked}-1"].error.startswith("chat_inactive")
    assert failed[f"f-{bad_request}-0"].error.startswith("bad_request")
    dead = await stream_contracts(nc, subjects.STREAM_DEAD_LETTER, DeadLetter)
    assert {d.outbox_message.outbox_id for d in dead} == set(failed)
    assert all(d.attempts >= 0 and d.reason for d in dead)

    calls = sandbox_calls(sandbox, "sendMessage")
    assert assert_retry_after_honoured(calls) == 2
    # A 400 other than the listed ones is not retried: one call for that message.
    assert len([c for c in calls if c["chat_id"] == bad_request]) == 2  # msg 0 (400) + msg 1
    # Order kept in every chat despite retries; the slow chat held back nobody else.
    for chat in (rate_limited, flaky, html_502, slow, quiet):
        assert [m["text"] for m in sandbox_messages(sandbox, chat)] == [f"{chat} #0", f"{chat} #1"]
    slow_started = min(c["timestamp"] for c in calls if c["chat_id"] == slow)
    quiet_first = min(c["timestamp"] for c in calls if c["chat_id"] == quiet and c["status"] == 200)
    assert quiet_first < slow_started + 2.0
    # Dropped after Telegram stored it: retried, so one duplicate at most, never a loss.
    dropped_texts = [m["text"] for m in sandbox_messages(sandbox, dropped)]
    assert dropped_texts.count(f"{dropped} #0") in (1, 2)
    assert dropped_texts[-1] == f"{dropped} #1"
    # The migrated group: remembered and resent to the supergroup.
    assert reports[f"f-{group}-0"].migrated_to_chat_id == migrated
    assert [
        m["text"]
        for m in sandbox_messages(sandbox, migrated)
        if m.get("text", "").startswith(str(group))
    ] == [f"{group} #0", f"{group} #1"]
    # Bad entities: resent once as plain text.
    assert [m["text"] for m in sandbox_messages(sandbox, bad_entities)] == ["unclosed & bold"]


async def test_429_storm_pauses_the_bot_and_nothing_is_sent_before_retry_after(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    await start_notifier(make_settings(sandbox))
    await publish_outbox(nc, _message("warm-up", 2000, "warm-up"))
    await wait_until(lambda: len(sandbox_messages(sandbox, 2000)) == 1)
    sandbox.api("POST", "/flood", json={"global_penalty_s": 3})
    chats = list(range(2001, 2013))
    for round_ in range(3):
        for chat in chats:
            await publish_outbox(nc, _message(f"s-{chat}-{round_}", chat, f"{chat} #{round_}"))

    async def all_final() -> bool:
        return len(await _final_reports(nc)) == 1 + 3 * len(chats)

    await wait_until(all_final, timeout_s=30)
    reports = await _final_reports(nc)
    assert {r.outcome for r in reports.values()} == {DeliveryOutcome.SENT}
    calls = sandbox_calls(sandbox, "sendMessage")
    limited = assert_retry_after_honoured(calls)
    assert limited >= 1
    # 429s spanning chats paused the whole bot: only a handful of calls met the penalty.
    assert limited <= 4
    for chat in chats:
        assert [m["text"] for m in sandbox_messages(sandbox, chat)] == [
            f"{chat} #{n}" for n in range(3)
        ]
