"""Routes, forum topics and several bots through the real services: the events service and
the notifier in this process, each test with its own nats-server, the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from events_harness import running_events
from nats.aio.client import Client

from cctelegram_cli.natsserver import NatsServer
from cctelegram_common import files, streams, subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus, SubmitApproval
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.claude_code import CardKind, ClaudeCodeCard
from cctelegram_common.contracts.files import FileKind
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.contracts.routing import ForumTopicRef, RouteRule
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_notifier.runtime import NotifierRuntime
from cctelegram_notifier.settings import NotifierSettings
from cctelegram_testing.notifier import publish_outbox, stream_contracts, wait_until
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

FIRST = "111111:first-token-abcdefghijklmnop"
SECOND = "222222:second-token-abcdefghijklmno"
APPROVER = 9001


@pytest.fixture
def server(tmp_path: Path) -> Iterator[NatsServer]:
    with NatsServer(tmp_path / "nats") as running:
        yield running


@pytest.fixture
async def nc(server: NatsServer) -> AsyncIterator[Client]:
    connection = await nats.connect(server.url)
    await streams.provision(connection.jetstream())
    yield connection
    await connection.close()


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(token=FIRST, extra_tokens=(SECOND,), rate_scale=10.0) as running:
        yield running


def settings(sandbox: RunningSandbox, **overrides: Any) -> NotifierSettings:
    fields: dict[str, Any] = {
        "bot_token": FIRST,
        "api_base_url": sandbox.url,
        "rate_scale": 10.0,
        "polling": {"enabled": False},
        "retry": {"base_s": 0.05, "cap_s": 0.5, "breaker_reset_s": 0.5},
        "heartbeat_interval_s": 0.5,
        # Each message's own call is what these tests look at.
        "coalesce": {"enabled": False},
        **overrides,
    }
    return NotifierSettings(**fields)


@pytest.fixture
async def notifiers(nc: Client) -> AsyncIterator[list[NotifierRuntime]]:
    started: list[NotifierRuntime] = []
    yield started
    for runtime in started:
        await runtime.stop()


async def start(
    nc: Client, started: list[NotifierRuntime], config: NotifierSettings
) -> NotifierRuntime:
    runtime = NotifierRuntime(config)
    await runtime.start(nc.jetstream())
    started.append(runtime)
    return runtime


def in_topic(forum: int, text: str, key: str = "project:api") -> OutboxMessage:
    return OutboxMessage(
        outbox_id=f"t-{uuid.uuid4().hex}",
        operation=Operation.SEND_MESSAGE,
        chat_id=forum,
        text=text,
        topic=ForumTopicRef(key=key, name=key.split(":", 1)[1]),
    )


def texts_by_thread(sandbox: RunningSandbox, forum: int) -> dict[int | None, list[str]]:
    found: dict[int | None, list[str]] = {}
    for message in sandbox.messages(forum):
        if message.get("text"):
            found.setdefault(message.get("message_thread_id"), []).append(message["text"])
    return found


async def test_topic_made_once_per_project_reused_after_restart_and_recreated_when_deleted(
    nc: Client, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    forum = sandbox.create_chat(type="forum", title="Agents")["id"]
    runtime = await start(nc, notifiers, settings(sandbox))
    for text in ("api one", "api two"):
        await publish_outbox(nc, in_topic(forum, text))
    await publish_outbox(nc, in_topic(forum, "web one", "project:web"))
    await wait_until(lambda: len(sandbox.calls("sendMessage")) == 3)
    created = sandbox.calls("createForumTopic")
    assert len(created) == 2  # api and web, once each
    threads = texts_by_thread(sandbox, forum)
    api_thread = next(t for t, texts in threads.items() if "api one" in texts)
    assert threads[api_thread] == ["api one", "api two"]

    # A restart forgets nothing: the topic is read back, not made again.
    await runtime.stop()
    notifiers.remove(runtime)
    await start(nc, notifiers, settings(sandbox))
    await publish_outbox(nc, in_topic(forum, "api after restart"))
    await wait_until(lambda: len(sandbox.calls("sendMessage")) == 4)
    assert len(sandbox.calls("createForumTopic")) == 2
    assert texts_by_thread(sandbox, forum)[api_thread][-1] == "api after restart"

    # Someone deletes the topic: Telegram says "message thread not found"; a new one is made.
    sandbox.api("POST", f"/chats/{forum}/topics/{api_thread}/state", json={"state": "deleted"})
    await publish_outbox(nc, in_topic(forum, "api in a new topic"))
    await wait_until(lambda: len(sandbox.calls("createForumTopic")) == 3)
    await wait_until(
        lambda: any("api in a new topic" in t for t in texts_by_thread(sandbox, forum).values())
    )
    threads = texts_by_thread(sandbox, forum)
    new_thread = next(t for t, texts in threads.items() if "api in a new topic" in texts)
    assert new_thread not in (None, api_thread)

    # Closed by an admin: still delivered, in General.
    sandbox.api("POST", f"/chats/{forum}/topics/{new_thread}/state", json={"state": "closed"})
    await publish_outbox(nc, in_topic(forum, "api while closed"))
    await wait_until(lambda: "api while closed" in texts_by_thread(sandbox, forum).get(None, []))


async def _approval(kv: Any, approval_id: str) -> ApprovalRecord | None:
    try:
        entry = await kv.get(approval_id)
    except Exception:
        return None
    return ApprovalRecord.model_validate_json(entry.value) if entry.value else None


async def test_a_press_inside_a_project_topic_decides_that_projects_approval(
    nc: Client, server: NatsServer, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    forum = sandbox.create_chat(
        type="forum", title="Agents", user={"id": APPROVER, "first_name": "Ann"}
    )["id"]
    rule = RouteRule(
        name="cards-by-project",
        types=("approval_request",),
        chat_id=forum,
        topic="per-project",
        approvers=(APPROVER,),
    )
    routes = await nc.jetstream().key_value(subjects.KV_ROUTES)
    await routes.put(rule.name, rule.model_dump_json().encode())
    polling = {"enabled": True, "lease_ttl_s": 3.0, "lease_check_s": 0.2, "timeout_s": 1.0}
    await start(nc, notifiers, settings(sandbox, polling=polling))
    async with running_events(server.url, routes_refresh_s=0, allowed_users=(4242,)):
        ids = {}
        for project in ("api", "web"):
            card = ClaudeCodeCard(
                kind=CardKind.PERMISSION, session_key=f"s-{project}", session_tag="ab12",
                project=project, tool_name="Bash", preview="make deploy",
            )  # fmt: skip
            command = SubmitApproval(
                approval_id=uuid.uuid4().hex,
                client_id="agent",
                title=f"Run make deploy in {project}?",
                options=("Allow", "Deny"),
                expires_at=utc_now() + timedelta(minutes=10),
                claude_code=card,
            )
            ids[project] = command.approval_id
            await nc.jetstream().publish(
                subjects.APPROVAL_SUBMIT,
                command.model_dump_json().encode(),
                headers={subjects.HEADER_MSG_ID: command.approval_id},
            )
        # Wait on the cards in the forum, not on sendMessage calls: the allowed user's chat
        # does not exist in the sandbox, and its refused sends are calls too.
        forum_cards = lambda: [m for m in sandbox.messages(forum) if m.get("reply_markup")]  # noqa: E731
        await wait_until(lambda: len(forum_cards()) == 2)
        assert len(sandbox.calls("createForumTopic")) == 2
        cards = forum_cards()
        api_card = next(m for m in cards if "📁 api" in m["text"])
        assert (
            api_card["message_thread_id"]
            != next(m for m in cards if "📁 web" in m["text"])["message_thread_id"]
        )
        allow = api_card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        sandbox.press(forum, api_card["message_id"], callback_data=allow, user_id=APPROVER)

        approvals = await nc.jetstream().key_value(subjects.KV_APPROVALS)

        async def decided() -> bool:
            record = await _approval(approvals, ids["api"])
            return record is not None and record.status is ApprovalStatus.APPROVED

        await wait_until(decided)
        web = await _approval(approvals, ids["web"])
        assert web is not None
        assert web.status is ApprovalStatus.PENDING
        updates = await stream_contracts(nc, subjects.STREAM_UPDATES, InboundUpdate)
        presses = [u for u in updates if "callback_query" in u.update]
        assert [u.topic_key for u in presses] == ["project:api"]
        # The card in the topic is edited: buttons gone.
        await wait_until(
            lambda: (
                not any(
                    m.get("reply_markup")
                    for m in sandbox.messages(forum)
                    if "📁 api" in (m.get("text") or "")
                )
            )
        )


async def test_two_bots_deliver_and_poll_independently(
    nc: Client, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    for bot in (111111, 222222):
        sandbox.api("POST", "/chats", json={"type": "private", "user": {"id": 7}}, bot=bot)
    polling = {"enabled": True, "lease_ttl_s": 3.0, "lease_check_s": 0.2, "timeout_s": 1.0}
    runtime = await start(
        nc, notifiers, settings(sandbox, bot_tokens={"two": SECOND}, polling=polling)
    )
    # The first bot meets a long 429 on its chat; the second bot must not notice.
    sandbox.fault(method="sendMessage", status=429, parameters={"retry_after": 30}, times=1)
    for index in range(3):
        for bot in (None, "two"):
            await publish_outbox(
                nc,
                OutboxMessage(
                    outbox_id=f"m-{bot}-{index}",
                    operation=Operation.SEND_MESSAGE,
                    chat_id=7,
                    bot=bot,
                    text=f"{bot or 'default'} {index}",
                ),
            )
    second = lambda: sandbox.api("GET", "/chats/7/messages", bot=222222)  # noqa: E731
    await wait_until(lambda: len(second()) == 3)
    assert [m["text"] for m in second()] == ["two 0", "two 1", "two 2"]
    assert sandbox.messages(7) == []  # the first bot still waits out its 429
    views = {view.name: view for view in runtime.heartbeat().bots}
    assert views["default"].rate_limited_count == 1
    assert views["two"].rate_limited_count == 0
    assert views["two"].sent_count == 3

    # Each bot polls its own updates, tagged with its name.
    sandbox.write(7, "to the first bot")
    sandbox.api("POST", "/chats/7/messages", json={"text": "to the second bot"}, bot=222222)

    async def both() -> bool:
        info = await nc.jetstream().stream_info(subjects.STREAM_UPDATES)
        return info.state.messages == 2

    await wait_until(both)
    updates = await stream_contracts(nc, subjects.STREAM_UPDATES, InboundUpdate)
    assert {(u.bot, u.update["message"]["text"]) for u in updates} == {
        (None, "to the first bot"),
        ("two", "to the second bot"),
    }
    assert all(view.poller for view in runtime.heartbeat().bots)
    await asyncio.sleep(0)


async def _submit(nc: Client, project: str, minutes: float = 10) -> str:
    command = SubmitApproval(
        approval_id=uuid.uuid4().hex,
        client_id="agent",
        title=f"Deploy {project}?",
        project=project,
        expires_at=utc_now() + timedelta(minutes=minutes),
    )
    await nc.jetstream().publish(
        subjects.APPROVAL_SUBMIT,
        command.model_dump_json().encode(),
        headers={subjects.HEADER_MSG_ID: command.approval_id},
    )
    return command.approval_id


def _card(sandbox: RunningSandbox, chat: int, title: str, bot: int | None = None) -> dict[str, Any]:
    params = {"bot": bot} if bot else {}
    messages = sandbox.api("GET", f"/chats/{chat}/messages", **params)
    return next(m for m in messages if title in (m.get("text") or ""))


async def test_quorum_and_escalation_in_the_sandbox(
    nc: Client, server: NatsServer, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    group = sandbox.create_chat(type="supergroup", title="Release")["id"]
    sandbox.api("POST", "/chats", json={"type": "private", "user": {"id": 8800}}, bot=222222)
    routes = await nc.jetstream().key_value(subjects.KV_ROUTES)
    for rule in (
        RouteRule(name="oncall", types=("info_notification",), bot="two", chat_id=8800,
                  approvers=(8800,)),
        RouteRule(name="prod", projects=("prod",), types=("approval_request",), chat_id=group,
                  approvers=(9001, 9002, 9003), quorum=2),
        RouteRule(name="slow", projects=("slow",), types=("approval_request",), chat_id=group,
                  approvers=(9001,), escalate_after_minutes=0.02, escalate_to="oncall"),
    ):  # fmt: skip
        await routes.put(rule.name, rule.model_dump_json().encode())
    polling = {"enabled": True, "lease_ttl_s": 3.0, "lease_check_s": 0.2, "timeout_s": 1.0}
    await start(nc, notifiers, settings(sandbox, polling=polling, bot_tokens={"two": SECOND}))
    approvals = await nc.jetstream().key_value(subjects.KV_APPROVALS)

    async def status_of(approval_id: str) -> ApprovalStatus | None:
        record = await _approval(approvals, approval_id)
        return record.status if record else None

    async with running_events(server.url, routes_refresh_s=0, allowed_users=(4242,)):
        # 2 of 3: one approval is not enough, the second decides.
        prod = await _submit(nc, "prod")
        await wait_until(
            lambda: any("Deploy prod" in (m.get("text") or "") for m in sandbox.messages(group))
        )
        card = _card(sandbox, group, "Deploy prod")
        approve = card["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        sandbox.press(group, card["message_id"], callback_data=approve, user_id=9001)
        await wait_until(lambda: len(sandbox.api("GET", "/callback_queries")) == 1 and all(
            q["answered"] for q in sandbox.api("GET", "/callback_queries")))  # fmt: skip
        assert await status_of(prod) is ApprovalStatus.PENDING
        sandbox.press(group, card["message_id"], callback_data=approve, user_id=9002)

        async def approved() -> bool:
            return await status_of(prod) is ApprovalStatus.APPROVED

        await wait_until(approved)

        # Nobody answers: after the escalation time the card also goes to the on-call bot's
        # chat, once; the on-call approver decides and both copies are edited.
        slow = await _submit(nc, "slow")
        await wait_until(lambda: any(
            "Deploy slow" in (m.get("text") or "")
            for m in sandbox.api("GET", "/chats/8800/messages", bot=222222)
        ), timeout_s=30)  # fmt: skip
        await asyncio.sleep(1.5)  # a second firing would have come by now
        copies = [
            m for m in sandbox.api("GET", "/chats/8800/messages", bot=222222)
            if "Deploy slow" in (m.get("text") or "")
        ]  # fmt: skip
        assert len(copies) == 1
        escalated = copies[0]
        deny = escalated["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
        sandbox.api("POST", f"/chats/8800/messages/{escalated['message_id']}/press",
                    json={"callback_data": deny, "user_id": 8800}, bot=222222)  # fmt: skip

        async def rejected() -> bool:
            return await status_of(slow) is ApprovalStatus.REJECTED

        await wait_until(rejected)
        await wait_until(lambda: not _card(sandbox, group, "Deploy slow").get("reply_markup"))
        await wait_until(
            lambda: not _card(sandbox, 8800, "Deploy slow", bot=222222).get("reply_markup")
        )


async def test_rules_select_routes_by_client_project_type_and_severity_with_fan_out(
    nc: Client, server: NatsServer, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    from cctelegram_common.contracts.events import SubmitEvent

    builds = sandbox.create_chat(type="group", title="Builds")["id"]
    forum = sandbox.create_chat(type="forum", title="Projects")["id"]
    sandbox.api("POST", "/chats", json={"type": "private", "user": {"id": 5150}}, bot=222222)
    sandbox.create_chat(type="private", user={"id": 4242})  # the allowed user (default route)
    routes = await nc.jetstream().key_value(subjects.KV_ROUTES)
    for rule in (
        RouteRule(name="ci-builds", clients=("ci",), types=("build_failed", "build_completed"),
                  chat_id=builds),
        RouteRule(name="per-project", projects=("api", "web"), chat_id=forum,
                  topic="per-project"),
        RouteRule(name="pager", min_severity="critical", bot="two", chat_id=5150),
    ):  # fmt: skip
        await routes.put(rule.name, rule.model_dump_json().encode())
    await start(nc, notifiers, settings(sandbox, bot_tokens={"two": SECOND}))
    async with running_events(server.url, routes_refresh_s=0, allowed_users=(4242,)):
        sent = [
            ("ci", "build_failed", "api", None, "ci build of api failed"),  # ci + api topic
            ("agent", "info_notification", "web", None, "web note"),  # web topic only
            ("agent", "alert_notification", None, "critical", "disk full"),  # pager only
            ("agent", "info_notification", "other", None, "nobody routes this"),  # default
        ]
        for client, kind, project, severity, title in sent:
            event = SubmitEvent(
                event_id=uuid.uuid4().hex, type=kind, title=title, client_id=client,
                project=project, severity=severity,
            )  # fmt: skip
            await nc.jetstream().publish(
                subjects.EVENT_SUBMIT,
                event.model_dump_json().encode(),
                headers={subjects.HEADER_MSG_ID: event.event_id},
            )

        def texts(chat: int, bot: int | None = None) -> list[str]:
            params = {"bot": bot} if bot else {}
            messages = sandbox.api("GET", f"/chats/{chat}/messages", **params)
            return [m.get("text") or "" for m in messages if m.get("text")]

        def has(chat: int, needle: str, bot: int | None = None) -> bool:
            return any(needle in text for text in texts(chat, bot))

        await wait_until(lambda: has(builds, "ci build of api failed"))
        await wait_until(lambda: has(forum, "ci build of api failed"))
        await wait_until(lambda: has(forum, "web note"))
        await wait_until(lambda: has(5150, "disk full", 222222))
        await wait_until(lambda: has(4242, "nobody routes this"))
        assert not has(builds, "web note")
        assert not has(4242, "disk full")  # routed away from the default
        assert not has(5150, "web note", 222222)
        threads = {
            m["text"].split("\n")[0]: m.get("message_thread_id")
            for m in sandbox.messages(forum)
            if m.get("text") and ("api" in m["text"] or "web note" in m["text"])
        }
        assert len(set(threads.values())) == 2  # api and web, each in its own topic
        assert len(sandbox.calls("createForumTopic")) == 2


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_files_both_ways_through_the_second_bot_and_its_topic(
    nc: Client, sandbox: RunningSandbox, notifiers: list[NotifierRuntime]
) -> None:
    for bot in (111111, 222222):
        sandbox.api("POST", "/chats", json={"type": "private", "user": {"id": 7}}, bot=bot)
    forum = sandbox.api(
        "POST", "/chats", json={"type": "forum", "title": "Ops", "user": {"id": 7}}, bot=222222
    )["id"]
    polling = {"enabled": True, "lease_ttl_s": 3.0, "lease_check_s": 0.2, "timeout_s": 1.0}
    await start(nc, notifiers, settings(sandbox, bot_tokens={"two": SECOND}, polling=polling))

    # A person sends a document to each bot (each bot's update ids are its own): both are
    # fetched by the bot that received them and stored apart.
    for bot, content in ((None, b"to the first bot\n"), (222222, b"to the second bot\n")):
        upload = {"file_name": "note.txt", "content_base64": base64.b64encode(content).decode()}
        sandbox.api("POST", "/chats/7/messages", json={"document": upload}, bot=bot)

    async def both() -> bool:
        info = await nc.jetstream().stream_info(subjects.STREAM_UPDATES)
        return info.state.messages == 2

    await wait_until(both)
    updates = await stream_contracts(nc, subjects.STREAM_UPDATES, InboundUpdate)
    by_bot = {u.bot: u for u in updates}
    second = by_bot["two"].files[0]
    assert second.id == f"tg-two-{by_bot['two'].update_id}-0"
    assert by_bot[None].files[0].id == f"tg{by_bot[None].update_id}-0"
    for bot, content in ((None, b"to the first bot\n"), ("two", b"to the second bot\n")):
        stored_id = by_bot[bot].files[0].id
        assert stored_id is not None
        found = await files.lookup(nc.jetstream(), stored_id)
        assert b"".join([c async for c in found.chunks(nc.jetstream())]) == content

    # A stored file goes out through the second bot, into its project's topic.
    report = await files.store(
        nc.jetstream(), "report1", _chunks(b"%PDF-1.4 report"), name="report.pdf",
        content_type="application/pdf", kind=FileKind.DOCUMENT, owner="ci", max_bytes=2**20,
    )  # fmt: skip
    await publish_outbox(
        nc,
        OutboxMessage(
            outbox_id="file-two",
            operation=Operation.SEND_DOCUMENT,
            chat_id=forum,
            bot="two",
            topic=ForumTopicRef(key="project:api", name="api"),
            text="<b>report</b>",
            stored_file=report,
            file_name=report.name,
        ),
    )

    def documents() -> list[dict[str, Any]]:
        messages = sandbox.api("GET", f"/chats/{forum}/messages", bot=222222)
        return [m for m in messages if m.get("document")]

    await wait_until(lambda: len(documents()) == 1)
    (sent,) = documents()
    assert sent["document"]["file_name"] == "report.pdf"
    assert sent["caption"] == "report"
    assert sent["message_thread_id"] not in (None, 1)
    topics = [m for m in sandbox.api("GET", f"/chats/{forum}/messages", bot=222222)
              if m.get("forum_topic_created")]  # fmt: skip
    assert [t["message_thread_id"] for t in topics] == [sent["message_thread_id"]]
