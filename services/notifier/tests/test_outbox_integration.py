"""The outbox against real NATS and the real sandbox: order, reports, records, idempotency,
edits, pause/resume and a rejected token."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import BridgeControl, ControlAction
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryReported,
    Operation,
    OutboxMessage,
)
from cctelegram_notifier.outbox import Held, Lane, due_for_keep_alive
from cctelegram_notifier.store import delivery_key
from cctelegram_testing.notifier import (
    publish_outbox,
    sandbox_calls,
    sandbox_messages,
    stream_contracts,
    wait_until,
)
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=10.0, auto_create_chats=True) as running:
        yield running


def _text_message(outbox_id: str, chat_id: int, text: str, **fields: Any) -> OutboxMessage:
    return OutboxMessage(
        outbox_id=outbox_id,
        operation=Operation.SEND_MESSAGE,
        chat_id=chat_id,
        text=text,
        event_id=f"evt-{outbox_id}",
        **fields,
    )


async def _reports(nc: Client) -> list[DeliveryReported]:
    return await stream_contracts(nc, subjects.STREAM_DELIVERIES, DeliveryReported)


async def test_messages_arrive_in_order_per_chat_with_reports_and_records(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chats = [101, 102, 103, -201]
    await start_notifier(make_settings(sandbox))
    for index in range(40):
        chat = chats[index % len(chats)]
        await publish_outbox(nc, _text_message(f"m-{index}", chat, f"<b>n{index}</b>"))

    async def all_reported() -> bool:
        return len(await _reports(nc)) == 40

    await wait_until(all_reported)
    reports = await _reports(nc)
    assert {report.outcome for report in reports} == {DeliveryOutcome.SENT}
    for chat in chats:
        texts = [message["text"] for message in sandbox_messages(sandbox, chat)]
        expected = [f"n{index}" for index in range(40) if chats[index % len(chats)] == chat]
        assert texts == expected  # every message once, in the order published
    kv = await nc.jetstream().key_value(subjects.KV_DELIVERIES)
    record = DeliveryRecord.model_validate_json((await kv.get(delivery_key("m-0"))).value)
    assert record.telegram_message_ids == (sandbox_messages(sandbox, 101)[0]["message_id"],)
    assert all(report.submitted_at is not None for report in reports)


async def test_recorded_outbox_message_is_acked_without_sending(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    kv = await nc.jetstream().key_value(subjects.KV_DELIVERIES)
    record = DeliveryRecord(outbox_id="evt:already:0", chat_id=301, telegram_message_ids=(5,))
    await kv.put(delivery_key(record.outbox_id), record.model_dump_json().encode())
    await start_notifier(make_settings(sandbox))
    await publish_outbox(nc, _text_message("evt:already:0", 301, "again?"))
    await publish_outbox(nc, _text_message("evt:fresh:0", 301, "fresh"))

    async def both_reported() -> bool:
        return len(await _reports(nc)) == 2

    await wait_until(both_reported)
    assert [message["text"] for message in sandbox_messages(sandbox, 301)] == ["fresh"]
    info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
    assert info.state.messages == 0  # both acked (work queue)


async def test_edit_resolves_its_target_through_the_deliveries_kv(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    await start_notifier(make_settings(sandbox))
    card = _text_message(
        "card-1",
        401,
        "Deploy?",
        keyboard=(({"text": "Yes", "callback_data": "y"},),),
    )
    await publish_outbox(nc, card)
    edit = OutboxMessage(
        outbox_id="card-1:decided",
        operation=Operation.EDIT_MESSAGE_TEXT,
        chat_id=401,
        text="Deploy? <i>approved</i>",
        target_outbox_id="card-1",
        keyboard=None,
    )
    await publish_outbox(nc, edit)

    async def edited() -> bool:
        return len(await _reports(nc)) == 2

    await wait_until(edited)
    (message,) = sandbox_messages(sandbox, 401)
    assert message["text"] == "Deploy? approved"
    assert not message.get("reply_markup")


async def test_pause_holds_messages_durably_and_resume_delivers_them(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    bridge = await nc.jetstream().key_value(subjects.KV_BRIDGE)
    await bridge.put(subjects.BRIDGE_KEY_DESIRED, json.dumps({"paused": True}).encode())
    runtime = await start_notifier(make_settings(sandbox))
    assert runtime.paused  # read from `desired` at start
    await publish_outbox(nc, _text_message("p-1", 501, "held"))
    await wait_until(lambda: runtime.heartbeat().paused)
    info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
    assert info.state.messages == 1
    assert sandbox_calls(sandbox, "sendMessage") == []
    await runtime.apply(BridgeControl(action=ControlAction.RESUME, requested_by="test"))
    await wait_until(lambda: len(sandbox_messages(sandbox, 501)) == 1)
    await runtime.apply(BridgeControl(action=ControlAction.PAUSE, requested_by="test"))
    await publish_outbox(nc, _text_message("p-2", 501, "held again"))
    await runtime.apply(BridgeControl(action=ControlAction.RESTART, requested_by="test"))
    # restart does not override the pause: only resume does
    info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
    assert info.state.messages == 1
    await runtime.apply(BridgeControl(action=ControlAction.RESUME, requested_by="test"))
    await wait_until(lambda: len(sandbox_messages(sandbox, 501)) == 2)


async def test_rejected_token_stops_sending_and_fails_readiness(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    sandbox.api("POST", "/tokens/revoke", json={"token": sandbox.token})
    runtime = await start_notifier(make_settings(sandbox))
    for index in range(3):
        await publish_outbox(nc, _text_message(f"t-{index}", 601, "never"))
    await wait_until(lambda: runtime.api_health.token_rejected)
    check = await runtime.check_token()
    assert check.status == "fail"
    await wait_until(lambda: runtime.consumer is not None and not runtime.consumer.fetching)
    info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
    assert info.state.messages == 3  # nothing lost, nothing dead-lettered
    assert sandbox_messages(sandbox, 601) == []
    assert runtime.heartbeat().token_rejected  # bridge-manager shows it too


def test_keep_alive_refreshes_a_whole_lane_head_first() -> None:
    """A crash hands messages back in the order their ack wait ran out: refreshing a lane's
    head alone (the only one old enough) would send it back after the messages behind it."""

    def held(name: str, fetched_at: float, *, acked: bool = False) -> Held:
        msg = cast(Msg, SimpleNamespace(name=name, is_acked=acked))
        return Held(msg, None, fetched_at=fetched_at)

    busy = Lane(1, deque([held("a0", 0.0), held("a1", 9.9), held("a2", 9.95, acked=True)]))
    young = Lane(2, deque([held("b0", 9.8), held("b1", 9.9)]))
    empty = Lane(3)
    due = due_for_keep_alive([busy, young, empty], now=10.0, period=0.5)
    assert [cast(Any, item.msg).name for item in due] == ["a0", "a1"]
