"""Forum topics made by the bot: createForumTopic, and the errors of closed, deleted and
unknown topics exactly as Telegram words them."""

from __future__ import annotations

from typing import Any

BotCaller = Any  # the conftest fixture's type; importlib mode keeps conftest unimportable


async def test_bot_creates_a_topic_and_posts_in_it(bot: BotCaller) -> None:
    forum = (await bot.control("POST", "/chats", type="forum", title="Agents")).json()
    topic = await bot.ok("createForumTopic", chat_id=forum["id"], name="api")
    assert set(topic) == {"message_thread_id", "name", "icon_color"}
    assert topic["name"] == "api"
    sent = await bot.ok(
        "sendMessage", chat_id=forum["id"], text="hi", message_thread_id=topic["message_thread_id"]
    )
    assert sent["message_thread_id"] == topic["message_thread_id"]
    view = (await bot.control("GET", f"/chats/{forum['id']}")).json()
    assert [t["name"] for t in view["topics"]] == ["General", "api"]


async def test_not_a_forum_and_bad_names(bot: BotCaller) -> None:
    group = (await bot.control("POST", "/chats", type="supergroup", title="Plain")).json()
    assert await bot.error("createForumTopic", chat_id=group["id"], name="x") == (
        400,
        "Bad Request: the chat is not a forum",
    )
    forum = (await bot.control("POST", "/chats", type="forum", title="F")).json()
    assert await bot.error("createForumTopic", chat_id=forum["id"], name="") == (
        400,
        "Bad Request: TOPIC_NAME_INVALID",
    )


async def test_closed_and_deleted_topics_refuse_messages(bot: BotCaller) -> None:
    forum = (await bot.control("POST", "/chats", type="forum", title="F")).json()
    chat_id = forum["id"]
    thread = (await bot.ok("createForumTopic", chat_id=chat_id, name="web"))["message_thread_id"]
    await bot.ok("sendMessage", chat_id=chat_id, text="before", message_thread_id=thread)

    closed = await bot.control("POST", f"/chats/{chat_id}/topics/{thread}/state", state="closed")
    assert closed.json()["closed"] is True
    assert await bot.error("sendMessage", chat_id=chat_id, text="x", message_thread_id=thread) == (
        400,
        "Bad Request: TOPIC_CLOSED",
    )
    assert await bot.ok("reopenForumTopic", chat_id=chat_id, message_thread_id=thread) is True
    await bot.ok("sendMessage", chat_id=chat_id, text="again", message_thread_id=thread)

    await bot.control("POST", f"/chats/{chat_id}/topics/{thread}/state", state="deleted")
    assert await bot.error("sendMessage", chat_id=chat_id, text="x", message_thread_id=thread) == (
        400,
        "Bad Request: message thread not found",
    )
    assert await bot.error("deleteForumTopic", chat_id=chat_id, message_thread_id=thread) == (
        400,
        "Bad Request: TOPIC_ID_INVALID",
    )
    view = (await bot.control("GET", f"/chats/{chat_id}")).json()
    assert [t["name"] for t in view["topics"]] == ["General"]
    messages = (await bot.control("GET", f"/chats/{chat_id}/messages")).json()
    assert all(m.get("message_thread_id") != thread for m in messages)


async def test_bot_closes_and_deletes_its_topic(bot: BotCaller) -> None:
    forum = (await bot.control("POST", "/chats", type="forum", title="F")).json()
    chat_id = forum["id"]
    thread = (await bot.ok("createForumTopic", chat_id=chat_id, name="x"))["message_thread_id"]
    assert await bot.ok("closeForumTopic", chat_id=chat_id, message_thread_id=thread) is True
    assert await bot.ok("deleteForumTopic", chat_id=chat_id, message_thread_id=thread) is True
    assert await bot.error("closeForumTopic", chat_id=chat_id, message_thread_id=thread) == (
        400,
        "Bad Request: TOPIC_ID_INVALID",
    )
