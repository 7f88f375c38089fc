"""Inbound Telegram updates: button presses, replies to cards, and bot commands.

Only allowed users get answers; anyone else is counted and ignored (a press on a card by a
non-approver gets a polite callback answer and changes nothing). Each ``update_id`` is
handled once: a marker in ``cctg_event_status`` records that it was processed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cctelegram_common import subjects
from cctelegram_common.contracts.files import FileInfo
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
    # Gives a stored file (one a person sent) to the client whose card it answered, so
    # that client may download it; None where there is no object store (unit tests).
    assign_file_owner: Callable[[str, str], Awaitable[bool]] | None = None

    async def handle(self, inbound: InboundUpdate) -> str:
        """Process one update at most once; returns what kind it was (for metrics/tests)."""
        marker = f"{subjects.EVENT_STATUS_UPDATE_PREFIX}{inbound.update_id}"
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
            return await self._callback(inbound.update_id, callback)
        message = update.get("message")
        if isinstance(message, dict):
            return await self._message(inbound.update_id, message, inbound.files)
        return "ignored"

    async def _callback(self, update_id: int, callback: dict[str, Any]) -> str:
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
        )
        return "callback"

    async def _message(
        self, update_id: int, message: dict[str, Any], files: tuple[FileInfo, ...] = ()
    ) -> str:
        person = _person(message.get("from") or {})
        if person.user_id not in self.allowed_users:
            metrics.STRANGER_MESSAGES.inc()
            return "ignored"
        chat_id = int((message.get("chat") or {}).get("id", person.user_id))
        text = str(message.get("text") or message.get("caption") or "")
        if text.startswith("/"):
            await self._command(update_id, chat_id, person, text)
            return "command"
        replied = message.get("reply_to_message")
        if isinstance(replied, dict) and (text or files):
            approval_id = await self.approvals.approval_for_message(
                chat_id, int(replied.get("message_id", 0))
            )
            if (
                approval_id is not None
                and text
                and await self.approvals.text_reply(
                    update_id=update_id,
                    chat_id=chat_id,
                    message_id=int(message.get("message_id", 0)),
                    approval_id=approval_id,
                    person=person,
                    text=text,
                    files=files,
                )
            ):
                await self._give_files(files, await self.approvals.owner_of(approval_id))
                return "reply"
            if approval_id is not None and not text:
                owner = await self.approvals.owner_of(approval_id)
                await self._give_files(files, owner)
                await self._record(
                    update_id, chat_id, person, ResponseKind.TEXT, "file", None,
                    files=files, client_id=owner, approval_id=approval_id,
                )  # fmt: skip
                return "file"
        if text or files:
            await self._record(
                update_id, chat_id, person, ResponseKind.TEXT, "message" if text else "file",
                text or None, files=files,
            )  # fmt: skip
        return "text" if text else ("file" if files else "text")

    async def _give_files(self, files: tuple[FileInfo, ...], owner: str | None) -> None:
        if owner is None or self.assign_file_owner is None:
            return
        for file in files:
            if file.id is not None:
                await self.assign_file_owner(file.id, owner)

    async def _record(
        self,
        update_id: int,
        chat_id: int,
        person: Person,
        kind: ResponseKind,
        action: str,
        text: str | None,
        *,
        files: tuple[FileInfo, ...] = (),
        client_id: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        await self.responses.record(
            ResponseRecord(
                response_id=f"resp-{update_id}",
                kind=kind,
                update_id=update_id,
                user_id=person.user_id,
                username=person.display,
                chat_id=chat_id,
                client_id=client_id,
                approval_id=approval_id,
                action=action,
                text=text[:1000] if text else None,
                files=files,
                recorded_at=self.clock(),
            )
        )

    async def _reply(self, update_id: int, chat_id: int, html_text: str) -> None:
        for index, part in enumerate(split_html(html_text)):
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"cmd-{update_id}:{chat_id}:{index}",
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat_id,
                    text=part,
                ),
            )

    async def _command(self, update_id: int, chat_id: int, person: Person, text: str) -> None:
        head, _, argument = text.strip().partition(" ")
        command = head.split("@", 1)[0].lower()
        await self._record(update_id, chat_id, person, ResponseKind.COMMAND, command, argument)
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
            reply = await self._pending(update_id, chat_id, person)
        elif command in MODE_COMMANDS:
            state = await self.modes.set(MODE_COMMANDS[command], who)
            reply = safe(MODE_MESSAGES[state.mode])
        else:
            reply = "Unknown command. /help lists what I understand."
        if reply:
            await self._reply(update_id, chat_id, reply)

    async def _pending(self, update_id: int, chat_id: int, person: Person) -> str:
        open_approvals = await self.approvals.open_for(person.user_id)
        if not open_approvals:
            return "No open approvals."
        for record in open_approvals[:10]:
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"pending-{update_id}:{chat_id}:{record.approval_id}",
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat_id,
                    approval_id=record.approval_id,
                    text=record.card_text,
                    keyboard=keyboard_for(record, self.approvals.signer),
                ),
            )
        more = len(open_approvals) - 10
        return f"{len(open_approvals)} open approval(s)" + (
            f" (showing 10, {more} more)" if more > 0 else ""
        )
