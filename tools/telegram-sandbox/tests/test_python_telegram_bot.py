"""An unmodified third-party client (python-telegram-bot) against a real sandbox server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter

from cctelegram_sandbox.config import ManualClock
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

CHAT_ID = 4242


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSandbox]:
    # A manual clock: flood windows only move when a test says so.
    with run_sandbox(clock=ManualClock()) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(server: RunningSandbox) -> RunningSandbox:
    server.reset()
    server.create_chat(type="private", user={"id": CHAT_ID, "first_name": "Ann"})
    return server


@pytest.fixture
async def bot(sandbox: RunningSandbox) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(sandbox.token, base_url=sandbox.bot_base_url) as bot:
        yield bot


def next_second(sandbox: RunningSandbox) -> None:
    """Let the per-chat flood window (1 message/s) pass on the sandbox's clock."""
    sandbox.api("POST", "/clock", json={"advance_s": 1})


async def test_get_me(bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert me.is_bot
    assert me.id == 123456789
    assert me.username == "cctelegram_sandbox_bot"


async def test_html_and_markdown_v2(bot: telegram.Bot, sandbox: RunningSandbox) -> None:
    html = await bot.send_message(
        CHAT_ID, "<b>Deploy</b> <code>v2</code>", parse_mode=ParseMode.HTML
    )
    assert html.text == "Deploy v2"
    assert [entity.type for entity in html.entities] == ["bold", "code"]
    next_second(sandbox)
    markdown = await bot.send_message(CHAT_ID, r"*Done*\.", parse_mode=ParseMode.MARKDOWN_V2)
    assert markdown.text == "Done."
    next_second(sandbox)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities: character '\.' is reserved"):
        await bot.send_message(CHAT_ID, "*Done*.", parse_mode=ParseMode.MARKDOWN_V2)
    with pytest.raises(
        BadRequest, match=r'(?i)can\'t parse entities: unsupported start tag "blink"'
    ):
        await bot.send_message(CHAT_ID, "<blink>x</blink>", parse_mode=ParseMode.HTML)


async def test_callback_data_of_64_bytes_passes_and_65_fails(
    bot: telegram.Bot, sandbox: RunningSandbox
) -> None:
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="x" * 64)]])
    message = await bot.send_message(CHAT_ID, "64 bytes", reply_markup=ok)
    assert message.reply_markup == ok
    next_second(sandbox)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("no", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(CHAT_ID, "65 bytes", reply_markup=too_long)


async def test_press_reaches_a_long_poll_then_answer_and_edit(
    bot: telegram.Bot, sandbox: RunningSandbox
) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="ap:1")]])
    message = await bot.send_message(CHAT_ID, "Deploy to prod?", reply_markup=keyboard)
    poll = asyncio.create_task(bot.get_updates(timeout=20))
    await asyncio.sleep(0.3)
    assert not poll.done()  # it is really waiting
    await asyncio.to_thread(sandbox.press, CHAT_ID, message.message_id, text="Approve")
    updates = await asyncio.wait_for(poll, 10)
    query = updates[0].callback_query
    assert query is not None
    assert query.data == "ap:1"
    assert query.from_user.id == CHAT_ID
    assert await bot.answer_callback_query(query.id, text="Approved") is True
    next_second(sandbox)
    edited = await bot.edit_message_text("Approved by Ann", CHAT_ID, message.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.edit_date is not None
    assert edited.reply_markup is None
    [stored] = sandbox.messages(CHAT_ID)
    assert stored["text"] == "Approved by Ann"


async def test_retry_after(bot: telegram.Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to PTB's future timedelta API instead of reading its deprecated int form.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    await bot.send_message(CHAT_ID, "first")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT_ID, "second, too soon")
    assert caught.value.retry_after == timedelta(seconds=1)


async def test_forbidden_when_blocked(bot: telegram.Bot, sandbox: RunningSandbox) -> None:
    sandbox.set_state(CHAT_ID, "blocked")
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT_ID, "hello?")


async def test_chat_migrated(bot: telegram.Bot, sandbox: RunningSandbox) -> None:
    group = sandbox.create_chat(type="group", title="Ops")
    migrated = sandbox.set_state(group["id"], "migrated")
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(group["id"], "hello")
    assert caught.value.new_chat_id == migrated["migrated_to"]["id"]


async def test_document_upload(bot: telegram.Bot) -> None:
    message = await bot.send_document(
        CHAT_ID, b"line 1\nline 2\n", filename="log.txt", caption="log"
    )
    assert message.document is not None
    assert message.document.file_name == "log.txt"
    assert message.caption == "log"
