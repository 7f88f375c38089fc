"""Inbound Telegram updates: button presses, replies to cards, and bot commands.

Only allowed users get answers; anyone else is counted and ignored (a press on a card by a
non-approver gets a polite callback answer and changes nothing). Each ``update_id`` is
handled once: a marker in ``cctg_event_status`` records that it was processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cctelegram_common import subjects
from cctelegram_common.contracts.modes import Mode
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.contracts.responses import ResponseKind, ResponseRecord
from cctelegram_common.contracts.tasks import TaskStatusRequest
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_events import metrics
from cctelegram_events.approvals import ApprovalService, Person, keyboard_for
from cctelegram_events.bridge_client import BridgeClient
from cctelegram_events.modes import MODE_MESSAGES, ModeStore
from cctelegram_events.ports import Clock, KvStore, Publisher, publish_outbox
from cctelegram_events.responses import ResponseLog
from cctelegram_events.tasks import TaskService
from cctelegram_events.telegram_html import safe, split_html

HELP_TEXT = "\n".join(
    [
        "<b>CCTelegram commands</b>",
        "/bridge — bridge status",
        "/tasks — task counts and what is in progress",
        "/todo — the todo list",
        "/pending — open approvals, with their buttons",
        "/restart — restart the bridge",
        "/cct:nomad — everything to Telegram",
        "/cct:local — only what needs you",
        "/cct:mute — only approvals and critical alerts",
        "/help — this list",
    ]
)
START_TEXT = (
    "👋 <b>CCTelegram is connected.</b>\n"
    "You will get notifications and approval requests here. /help lists the commands."
)
MODE_COMMANDS = {"/cct:nomad": Mode.NOMAD, "/cct:local": Mode.LOCAL, "/cct:mute": Mode.MUTE}


@dataclass(frozen=True)
class Place:
    """Where an update came from, so answers go back the same way (bot, forum topic)."""

    bot: str | None
    thread: int | None
    key: str  # the update's key, unique across bots
    topic_key: str | None = None


def _thread_of(message: dict[str, Any]) -> int | None:
    thread = message.get("message_thread_id")
    in_topic = message.get("is_topic_message") or (message.get("chat") or {}).get("is_forum")
    return thread if isinstance(thread, int) and in_topic else None


def _person(raw: dict[str, Any]) -> Person:
    return Person(
        user_id=int(raw.get("id", 0)),
        username=raw.get("username"),
        first_name=raw.get("first_name"),
    )


@dataclass
class UpdateInterpreter:
    approvals: ApprovalService
    responses: ResponseLog
    tasks: TaskService
    modes: ModeStore
    bridge: BridgeClient
    status_kv: KvStore
    publisher: Publisher
    clock: Clock
    allowed_users: tuple[int, ...]

    async def handle(self, inbound: InboundUpdate) -> str:
        """Process one update at most once; returns what kind it was (for metrics/tests)."""
        marker = f"{subjects.EVENT_STATUS_UPDATE_PREFIX}{inbound.key}"
        if await self.status_kv.get(marker) is not None:
            kind = "duplicate"
        else:
            kind = await self._dispatch(inbound)
            await self.status_kv.put(marker, kind.encode())
        metrics.UPDATES_PROCESSED.labels(kind).inc()
        return kind

    async def _dispatch(self, inbound: InboundUpdate) -> str:
        update = inbound.update
        callback = update.get("callback_query")
        if isinstance(callback, dict):
            return await self._callback(inbound, callback)
        message = update.get("message")
        if isinstance(message, dict):
            return await self._message(inbound, message)
        return "ignored"

    async def _callback(self, inbound: InboundUpdate, callback: dict[str, Any]) -> str:
        update_id = inbound.update_id
        person = _person(callback.get("from") or {})
        message = callback.get("message") or {}
        chat_id = int((message.get("chat") or {}).get("id", person.user_id))
        if person.user_id not in self.allowed_users:
            metrics.STRANGER_MESSAGES.inc()
        await self.approvals.press(
            update_id=update_id,
            callback_query_id=str(callback.get("id", "")),
            chat_id=chat_id,
            person=person,
            data=str(callback.get("data") or ""),
            bot=inbound.bot,
            response_key=inbound.key,
            topic_key=inbound.topic_key,
        )
        return "callback"

    async def _message(self, inbound: InboundUpdate, message: dict[str, Any]) -> str:
        update_id = inbound.update_id
        place = Place(
            bot=inbound.bot,
            thread=_thread_of(message),
            key=inbound.key,
            topic_key=inbound.topic_key,
        )
        person = _person(message.get("from") or {})
        if person.user_id not in self.allowed_users:
            metrics.STRANGER_MESSAGES.inc()
            return "ignored"
        chat_id = int((message.get("chat") or {}).get("id", person.user_id))
        text = str(message.get("text") or message.get("caption") or "")
        if text.startswith("/"):
            await self._command(update_id, chat_id, person, text, place)
            return "command"
        replied = message.get("reply_to_message")
        if isinstance(replied, dict) and text:
            approval_id = await self.approvals.approval_for_message(
                chat_id, int(replied.get("message_id", 0)), inbound.bot
            )
            if approval_id is not None and await self.approvals.text_reply(
                update_id=update_id,
                chat_id=chat_id,
                message_id=int(message.get("message_id", 0)),
                approval_id=approval_id,
                person=person,
                text=text,
                bot=inbound.bot,
                message_thread_id=place.thread,
                response_key=inbound.key,
                topic_key=inbound.topic_key,
            ):
                return "reply"
        if text:
            await self._record(
                update_id, chat_id, person, ResponseKind.TEXT, "message", text, place
            )
        return "text"

    async def _record(
        self,
        update_id: int,
        chat_id: int,
        person: Person,
        kind: ResponseKind,
        action: str,
        text: str | None,
        place: Place,
    ) -> None:
        await self.responses.record(
            ResponseRecord(
                response_id=f"resp-{place.key}",
                kind=kind,
                update_id=update_id,
                user_id=person.user_id,
                username=person.display,
                chat_id=chat_id,
                action=action,
                text=text[:1000] if text else None,
                bot=place.bot,
                topic_key=place.topic_key,
                recorded_at=self.clock(),
            )
        )

    async def _reply(self, place: Place, chat_id: int, html_text: str) -> None:
        for index, part in enumerate(split_html(html_text)):
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"cmd-{place.key}:{chat_id}:{index}",
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat_id,
                    bot=place.bot,
                    message_thread_id=place.thread,
                    text=part,
                ),
            )

    async def _command(
        self, update_id: int, chat_id: int, person: Person, text: str, place: Place
    ) -> None:
        head, _, argument = text.strip().partition(" ")
        command = head.split("@", 1)[0].lower()
        await self._record(
            update_id, chat_id, person, ResponseKind.COMMAND, command, argument, place
        )
        who = f"tg:{person.user_id}"
        if command == "/start":
            reply = START_TEXT
        elif command == "/help":
            reply = HELP_TEXT
        elif command == "/bridge":
            reply = safe(await self.bridge.status_text(who))
        elif command == "/restart":
            reply = safe(await self.bridge.restart_text(who))
        elif command in ("/tasks", "/todo"):
            request = TaskStatusRequest(client_id=who, read_all=True)
            if command == "/todo":
                reply = safe((await self.tasks.todo(request)).text)
            else:
                result = await self.tasks.status(request)
                counts = result.combined
                lines = [
                    f"📋 Tasks: {counts.total} · ✅ {counts.completed} · 🔄 {counts.in_progress}"
                    f" · ⏭️ {counts.pending} · 🚫 {counts.blocked}"
                ]
                lines += [
                    f"🔄 {task.title}" for task in result.tasks if task.status == "in_progress"
                ][:20]
                reply = safe("\n".join(lines))
        elif command == "/pending":
            reply = await self._pending(place, chat_id, person)
        elif command in MODE_COMMANDS:
            state = await self.modes.set(MODE_COMMANDS[command], who)
            reply = safe(MODE_MESSAGES[state.mode])
        else:
            reply = "Unknown command. /help lists what I understand."
        if reply:
            await self._reply(place, chat_id, reply)

    async def _pending(self, place: Place, chat_id: int, person: Person) -> str:
        open_approvals = await self.approvals.open_for(person.user_id)
        if not open_approvals:
            return "No open approvals."
        for record in open_approvals[:10]:
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"pending-{place.key}:{chat_id}:{record.approval_id}",
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat_id,
                    bot=place.bot,
                    message_thread_id=place.thread,
                    approval_id=record.approval_id,
                    text=record.card_text,
                    keyboard=keyboard_for(record, self.approvals.signer),
                ),
            )
        more = len(open_approvals) - 10
        return f"{len(open_approvals)} open approval(s)" + (
            f" (showing 10, {more} more)" if more > 0 else ""
        )
