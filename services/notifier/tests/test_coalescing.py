"""Bursts coalesced: what may be merged and how long it is (pure), then against real NATS and
the sandbox at Telegram's real limits: every original delivered and reported once, in order,
cards never merged, partly recorded batches, edits of a merged original, a refused merge."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from cctelegram_common import streams, subjects
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryRecord,
    DeliveryReported,
    InlineButton,
    Operation,
    OutboxMessage,
)
from cctelegram_notifier.coalesce import SEPARATOR, Measure, measure, merged_message, plan
from cctelegram_notifier.store import delivery_key
from cctelegram_testing.nats import NatsServer
from cctelegram_testing.notifier import (
    NotifierProcess,
    publish_outbox,
    sandbox_calls,
    sandbox_messages,
    stream_contracts,
    wait_until,
)
from cctelegram_testing.sandbox import RunningSandbox, format_text, run_sandbox, utf16_len

CARD_KEYBOARD = ((InlineButton(text="Approve", callback_data="a"),),)


def _note(outbox_id: str, chat_id: int, text: str | None = None, **fields: Any) -> OutboxMessage:
    return OutboxMessage(
        outbox_id=outbox_id,
        operation=Operation.SEND_MESSAGE,
        chat_id=chat_id,
        event_id=f"evt-{outbox_id}",
        text=text if text is not None else f"<b>{outbox_id}</b> done",
        **fields,
    )


# --- what may be merged, and how long it is once Telegram parsed it --------------------------


def test_measure_counts_what_telegram_shows_after_parsing_html() -> None:
    assert measure("<b>build</b> &amp; <i>test</i>", "HTML") == Measure(12, 2)
    assert measure("&#128293; fire", "HTML") == Measure(7, 0)  # an astral emoji is 2 units
    assert measure("a < b", None) == Measure(5, 0)  # plain text: as written
    for broken in ("a < b", "<b>open", "<marquee>x</marquee>", "<b><i>x</b></i>"):
        assert measure(broken, "HTML") is None, broken  # Telegram would refuse: sent alone
    assert measure("*x*", "MarkdownV2") is None


@pytest.mark.parametrize(
    "text",
    [
        "✅ <b>Build passed</b> on <code>main</code> &amp; <i>deployed</i>",
        '<a href="https://x.y/z?a=1&amp;b=2">PR #12</a> — <blockquote expandable>log\n'
        '<pre><code class="language-python">x = a &lt; b</code></pre></blockquote>',
        "🔥 &#128293; &#x1F525; &lt;tag&gt; &quot;q&quot; &unknown; & alone",
        '<span class="tg-spoiler">s</span> <tg-spoiler>t</tg-spoiler> <s>u</s> <u>v</u>',
        "  padded line with trailing spaces   ",
    ],
)
def test_measure_agrees_with_telegrams_html_parser(text: str) -> None:
    """The sandbox's parser is a port of TDLib's: what we count is what Telegram counts."""
    parsed, entities = format_text(text, "HTML")
    measured = measure(text.strip(), "HTML")
    assert measured is not None
    assert measured.utf16 == utf16_len(parsed)
    assert measured.entities >= len(entities)


def test_plan_stops_at_a_card_another_thread_or_the_length_limit() -> None:
    notes = [_note(f"n{i}", 1) for i in range(3)]
    card = _note("card", 1, keyboard=CARD_KEYBOARD)
    assert plan([*notes, card, *notes]) == 3
    assert plan([card, *notes]) == 1  # a card goes alone and keeps its place
    threaded = _note("t", 1, message_thread_id=7)
    assert plan([notes[0], threaded, notes[1]]) == 1
    reply = _note("r", 1, reply_to_message_id=3)
    assert plan([notes[0], reply]) == 1
    # The limit is on the parsed text: 1,500 "&amp;" are 7,500 characters sent, 1,500 shown.
    escaped = [_note(f"e{i}", 1, "&amp;" * 1500) for i in range(3)]
    assert plan(escaped) == 2  # 1500 + 14 + 1500 fits in 4,096; a third would not
    assert plan([_note("x", 1, "y" * 4096), *notes]) == 1
    bold = [_note(f"b{i}", 1, "<b>x</b>" * 60) for i in range(2)]
    assert plan(bold) == 1  # 120 entities would pass Telegram's 100
    assert plan(notes, max_messages=2) == 2
    digest = _note("digest", 1, extra={"digest_of": ["e1"]})
    assert plan([notes[0], digest]) == 1  # other extra parameters: kept apart
    silent = _note("s", 1, disable_notification=True)
    assert plan([notes[0], silent]) == 2
    assert merged_message([notes[0], silent]).disable_notification is False  # loud wins
    assert merged_message([silent, silent]).disable_notification is True
    assert merged_message([notes[0], silent]).text == f"<b>n0</b> done{SEPARATOR}<b>s</b> done"
    markdown = _note("md", 1, "*x*", parse_mode="MarkdownV2")
    assert plan([markdown, notes[0]]) == 1


# --- against real NATS and the sandbox at Telegram's real limits ----------------------------


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=1.0, auto_create_chats=True) as running:
        yield running


def _settings(make_settings: Any, sandbox: RunningSandbox, **overrides: Any) -> Any:
    return make_settings(sandbox, rate_scale=1.0, coalesce={"enabled": True}, **overrides)


async def _reports(nc: Client) -> list[DeliveryReported]:
    if (await nc.jetstream().stream_info(subjects.STREAM_DELIVERIES)).state.messages == 0:
        return []  # a fresh stream (first sequence 0) cannot be read by sequence
    return await stream_contracts(nc, subjects.STREAM_DELIVERIES, DeliveryReported)


async def _reported(nc: Client, count: int, timeout_s: float = 60.0) -> list[DeliveryReported]:
    async def enough() -> bool:
        return len(await _reports(nc)) >= count

    await wait_until(enough, timeout_s=timeout_s, interval_s=0.2)
    return await _reports(nc)


async def _warm_up(nc: Client, chat_id: int, already_reported: int = 0) -> None:
    """One message to the chat: for the next second its window is closed, so a lane that
    gets the next messages waits, and everything published meanwhile is in one call
    (whatever sizes the consumer's fetches happen to have)."""
    await publish_outbox(nc, _note(f"warm-up-{chat_id}", chat_id, "warm-up"))
    await _reported(nc, already_reported + 1)


def _originals(sandbox: RunningSandbox, chat_id: int) -> list[tuple[str, int]]:
    """Every original the chat shows, in order, with the Telegram message carrying it."""
    return [
        (part, message["message_id"])
        for message in sandbox_messages(sandbox, chat_id)
        for part in message["text"].split(SEPARATOR)
    ]


async def test_burst_is_coalesced_in_order_and_every_original_reported_once(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chat = 501
    await start_notifier(_settings(make_settings, sandbox))
    published: list[OutboxMessage] = []
    for index in range(24):
        if index in (8, 16):
            published.append(
                _note(f"card{index}", chat, f"Approve {index}?", keyboard=CARD_KEYBOARD)
            )
        published.append(_note(f"n{index:02d}", chat))
    for message in published:
        await publish_outbox(nc, message)

    reports = await _reported(nc, len(published))
    assert len(reports) == len(published)
    assert {report.outcome for report in reports} == {DeliveryOutcome.SENT}
    by_id = {report.outbox_id: report for report in reports}
    assert set(by_id) == {message.outbox_id for message in published}  # each once

    shown = _originals(sandbox, chat)
    visible = [message.text.replace("<b>", "").replace("</b>", "") for message in published]
    assert [text for text, _ in shown] == visible  # nothing lost, nothing twice, in order
    carried = dict(zip([message.outbox_id for message in published], shown, strict=True))
    for outbox_id, (_, message_id) in carried.items():
        assert by_id[outbox_id].telegram_message_ids == (message_id,)
    messages = sandbox_messages(sandbox, chat)
    cards = [message for message in messages if message.get("reply_markup")]
    assert [card["text"] for card in cards] == ["Approve 8?", "Approve 16?"]  # never merged
    assert len(messages) < len(published) / 2  # the burst was coalesced
    calls = sandbox_calls(sandbox, "sendMessage")
    assert [call for call in calls if call["status"] == 429] == []
    kv = await nc.jetstream().key_value(subjects.KV_DELIVERIES)
    record = DeliveryRecord.model_validate_json((await kv.get(delivery_key("n05"))).value)
    assert record.telegram_message_ids == by_id["n05"].telegram_message_ids
    info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
    assert info.state.messages == 0  # every original acked


async def test_a_partly_recorded_batch_sends_only_what_was_not_recorded(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    # What a crash between two records of a merged send leaves: m2 and m3 recorded, the rest
    # not. The redelivered batch reports m2 and m3 with the recorded id and sends the rest.
    chat = 502
    kv = await nc.jetstream().key_value(subjects.KV_DELIVERIES)
    for outbox_id in ("m2", "m3"):
        record = DeliveryRecord(outbox_id=outbox_id, chat_id=chat, telegram_message_ids=(777,))
        await kv.put(delivery_key(outbox_id), record.model_dump_json().encode())
    await start_notifier(_settings(make_settings, sandbox))
    await _warm_up(nc, chat)
    notes = [_note(f"m{index}", chat, f"m{index}") for index in range(6)]
    for note in notes:
        await publish_outbox(nc, note)

    reports = {report.outbox_id: report for report in await _reported(nc, len(notes) + 1)}
    assert reports["m2"].telegram_message_ids == reports["m3"].telegram_message_ids == (777,)
    _, merged = sandbox_messages(sandbox, chat)
    assert merged["text"] == SEPARATOR.join(["m0", "m1", "m4", "m5"])
    for index in (0, 1, 4, 5):
        assert reports[f"m{index}"].telegram_message_ids == (merged["message_id"],)


async def test_an_edit_of_a_merged_original_rewrites_only_its_part(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chat = 503
    await start_notifier(_settings(make_settings, sandbox))
    await _warm_up(nc, chat)
    notes = [_note(f"p{index}", chat, f"p{index}") for index in range(4)]
    for note in notes:
        await publish_outbox(nc, note)
    await _reported(nc, len(notes) + 1)
    _, merged = sandbox_messages(sandbox, chat)  # all four were waiting: one message
    assert merged["text"] == SEPARATOR.join(["p0", "p1", "p2", "p3"])

    # A live task card that happened to travel in the burst is edited later.
    edit = OutboxMessage(
        outbox_id="p1:card",
        operation=Operation.EDIT_MESSAGE_TEXT,
        chat_id=chat,
        text="<b>p1</b> 60 %",
        target_outbox_id="p1",
    )
    await publish_outbox(nc, edit)
    await _reported(nc, len(notes) + 1)
    await publish_outbox(
        nc,
        edit.model_copy(update={"outbox_id": "p2:card", "text": "p2 ok", "target_outbox_id": "p2"}),
    )
    await _reported(nc, len(notes) + 3)
    _, edited = sandbox_messages(sandbox, chat)
    assert edited["text"] == SEPARATOR.join(["p0", "p1 60 %", "p2 ok", "p3"])


async def test_a_merged_message_telegram_refuses_is_sent_original_by_original(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chat = 504
    await start_notifier(_settings(make_settings, sandbox))
    await _warm_up(nc, chat)
    sandbox.fault(
        method="sendMessage",
        times=1,
        status=400,
        description="Bad Request: message is too long",
    )
    notes = [_note(f"q{index}", chat, f"q{index}") for index in range(3)]
    for note in notes:
        await publish_outbox(nc, note)

    reports = await _reported(nc, len(notes) + 1)
    assert {report.outcome for report in reports} == {DeliveryOutcome.SENT}
    refused = [call for call in sandbox_calls(sandbox, "sendMessage") if call["status"] == 400]
    assert [call["params"]["text"] for call in refused] == [SEPARATOR.join(["q0", "q1", "q2"])]
    texts = [message["text"] for message in sandbox_messages(sandbox, chat)]
    assert texts == ["warm-up", "q0", "q1", "q2"]


async def test_a_crash_during_a_merged_send_loses_nothing_and_reports_each_once(
    fresh_nats: NatsServer, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """kill -9 while a merged message is out at Telegram (which then accepts it): the batch
    comes back after the ack wait and is sent again. Nothing is lost, every original is
    reported once, and only the originals that were out at the crash show a second time.

    First showings are in stream order whichever lands first, the stalled call or the second
    notifier's: the stalled call carries the lane's head r0 and what was behind it, and the
    second notifier gets the chat's messages back in stream order and starts from r0 as well.
    That second half is the notifier's doing, not NATS's: NATS hands unacked messages back in
    the order their ack wait runs out, and the keep-alive used to refresh only the messages
    held long enough — r0 fetched a few ms before r1..r9 could be refreshed alone, come back
    last, and the second notifier sent "r1" (or r1..r9) before the stalled r0 landed (seen
    as ['r1', 'r0', ...] under load). The keep-alive now refreshes a whole lane, head first
    (``test_keep_alive_refreshes_a_whole_lane_head_first``)."""
    chat = 505
    nc = await nats.connect(fresh_nats.url)
    await streams.provision(nc.jetstream())
    env = {
        "NATS_URL": fresh_nats.url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "NOTIFIER_POLLING__ENABLED": "false",
        "NOTIFIER_OUTBOX__ACK_WAIT_S": "2",
    }
    first = NotifierProcess(env, log_path=str(tmp_path / "first.log")).start()
    second: NotifierProcess | None = None
    try:
        await asyncio.to_thread(first.wait_ready)
        await _warm_up(nc, chat)
        sandbox.fault(method="sendMessage", times=1, delay_s=3.0)  # the merged call stalls
        notes = [_note(f"r{index}", chat, f"r{index}") for index in range(10)]
        for note in notes:
            await publish_outbox(nc, note)
        await wait_until(lambda: sandbox.api("GET", "/faults") == [], timeout_s=20)
        first.kill()  # the merged call is out: Telegram will accept it, nobody records it
        second = NotifierProcess(env, log_path=str(tmp_path / "second.log")).start()
        reports = await _reported(nc, len(notes) + 1)
        await asyncio.sleep(1.5)  # anything sent twice would show by now

        assert len(reports) == len(notes) + 1  # one report per original
        dead = await nc.jetstream().stream_info(subjects.STREAM_DEAD_LETTER)
        assert dead.state.messages == 0
        shown = [text for text, _ in _originals(sandbox, chat)][1:]  # after the warm-up
        expected = [note.text for note in notes]
        assert list(dict.fromkeys(shown)) == expected  # nothing lost, first showing in order
        copies = Counter(shown)
        (interrupted, *_) = [
            message["text"].split(SEPARATOR) for message in sandbox_messages(sandbox, chat)[1:]
        ]
        # A crash costs at most one extra showing of what was out at Telegram at that moment.
        assert max(copies.values()) <= 2
        assert {text for text, count in copies.items() if count > 1} <= set(interrupted)
        for report in reports:  # each with a message that shows it
            assert (report.outbox_id, report.telegram_message_ids[0]) in set(
                _originals(sandbox, chat)
            ) or report.outbox_id.startswith("warm-up")
        info = await nc.jetstream().stream_info(subjects.STREAM_OUTBOX)
        assert info.state.messages == 0
    finally:
        first.stop()
        if second is not None:
            second.stop()
        await nc.close()
