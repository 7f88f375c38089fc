"""Inbound Telegram updates: button presses, replies to cards, and bot commands.

They arrive typed (``InboundUpdate.event``: the Telegram edge translated them); nothing here
reads Telegram JSON.

Only allowed users get answers; anyone else is counted and ignored (a press on a card by a
non-approver gets a polite callback answer and changes nothing). Each ``update_id`` is
handled once: a marker in the events service's private ``cctg_updates_seen`` bucket records
that it was processed (``cctg_event_status`` holds only ``EventStatus`` records, for readers).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import time

from pydantic import ValidationError

from cctelegram_common.contracts.files import FileInfo
from cctelegram_common.contracts.modes import Mode, QuietHoursSpec
from cctelegram_common.contracts.outbox import InlineButton, Operation, OutboxMessage, outbox_id
from cctelegram_common.contracts.responses import ResponseKind, ResponseRecord
from cctelegram_common.contracts.tasks import TaskStatusRequest
from cctelegram_common.contracts.updates import (
    ButtonPressed,
    CommandIssued,
    InboundUpdate,
    TelegramPerson,
    TextReceived,
)
from cctelegram_events import metrics
from cctelegram_events.approval_cards import keyboard_for
from cctelegram_events.approval_rules import Person
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.bridge_client import BridgeClient
from cctelegram_events.callbacks import MODE_PREFIX, RULE_PREFIX
from cctelegram_events.modes import (
    MODE_EMOJI,
    MODE_MESSAGES,
    ModeService,
    describe_quiet_hours,
)
from cctelegram_events.ports import Clock, KvStore, Publisher, publish_outbox
from cctelegram_events.responses import ResponseLog
from cctelegram_events.sessions import SessionService
from cctelegram_events.tasks import TaskService
from cctelegram_events.telegram_html import safe, split_html

HELP_TEXT = "\n".join(
    [
        "<b>CCTelegram commands</b>",
        "/bridge — bridge status",
        "/tasks — task counts and what is in progress",
        "/todo — the todo list",
        "/pending — open approvals, with their buttons",
        "/rules — Claude Code session rules, with buttons to revoke",
        "/restart — restart the bridge",
        "/mode — each client's delivery mode, with buttons to change it",
        "/mode &lt;client|default&gt; &lt;nomad|local|mute|default&gt; — set one",
        "/quiet &lt;client|default&gt; 22:00 07:00 [time zone] | off | default — quiet hours",
        "/cct:nomad — everything to Telegram (the default for every client)",
        "/cct:local — only what needs you (the default)",
        "/cct:mute — only approvals and critical alerts (the default)",
        "/cct:&lt;mode&gt; &lt;client&gt; — the same for one client",
        "/help — this list",
    ]
)
START_TEXT = (
    "👋 <b>CCTelegram is connected.</b>\n"
    "You will get notifications and approval requests here. /help lists the commands."
)
MODE_COMMANDS = {"/cct:nomad": Mode.NOMAD, "/cct:local": Mode.LOCAL, "/cct:mute": Mode.MUTE}
# The choices of a ``/mode`` button, by index; None = follow the default (clients only).
MODE_CHOICES: tuple[Mode | None, ...] = (Mode.NOMAD, Mode.LOCAL, Mode.MUTE, None)
DEFAULT_REF = "default"
MODE_LIST_MAX = 20
RULES_LIST_MAX = 10
RULES_BUTTONS_MAX = 8


def _quiet_suffix(spec: QuietHoursSpec | None) -> str:
    return f" · 🌙 {describe_quiet_hours(spec)}" if spec is not None else ""


def mode_ref(client_id: str) -> str:
    """A client's short name in button data (64 bytes at most; client ids may be long)."""
    return hashlib.sha256(client_id.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Place:
    """Where an update came from, so answers go back the same way (bot, forum topic)."""

    bot: str | None
    thread: int | None
    key: str  # the update's key, unique across bots
    topic_key: str | None = None

    @classmethod
    def of(cls, inbound: InboundUpdate, thread: int | None) -> Place:
        return cls(bot=inbound.bot, thread=thread, key=inbound.key, topic_key=inbound.topic_key)


def _person(person: TelegramPerson) -> Person:
    return Person(user_id=person.user_id, username=person.username, first_name=person.first_name)


@dataclass
class UpdateInterpreter:
    approvals: ApprovalService
    responses: ResponseLog
    tasks: TaskService
    modes: ModeService
    bridge: BridgeClient
    seen_kv: KvStore
    publisher: Publisher
    clock: Clock
    allowed_users: tuple[int, ...]
    # Gives a stored file (one a person sent) to the client whose card it answered, so
    # that client may download it; None where there is no object store (unit tests).
    assign_file_owner: Callable[[str, str], Awaitable[bool]] | None = None
    # Claude Code sessions, for /rules (optional so narrower set-ups need not build them).
    sessions: SessionService | None = None

    async def handle(self, inbound: InboundUpdate) -> str:
        """Process one update at most once; returns what kind it was (for metrics/tests)."""
        marker = inbound.key
        if await self.seen_kv.get(marker) is not None:
            kind = "duplicate"
        else:
            kind = await self._dispatch(inbound)
            await self.seen_kv.put(marker, kind.encode())
        metrics.UPDATES_PROCESSED.labels(kind).inc()
        return kind

    async def _dispatch(self, inbound: InboundUpdate) -> str:
        event = inbound.event
        if isinstance(event, ButtonPressed):
            return await self._callback(inbound, event)
        if isinstance(event, TextReceived | CommandIssued):
            return await self._message(inbound, event)
        return "ignored"

    async def _callback(self, inbound: InboundUpdate, pressed: ButtonPressed) -> str:
        update_id = inbound.update_id
        place = Place.of(inbound, pressed.message_thread_id)
        person = _person(pressed.person)
        if person.user_id not in self.allowed_users:
            metrics.STRANGER_MESSAGES.inc()
        if pressed.data.startswith(RULE_PREFIX):
            await self._revoke_press(place, pressed, person)
            return "callback"
        if pressed.data.startswith(MODE_PREFIX):
            await self._mode_press(
                update_id,
                pressed.callback_query_id,
                pressed.chat_id,
                pressed.message_id,
                person,
                pressed.data,
                inbound.bot,
            )
            return "callback"
        await self.approvals.press(
            update_id=update_id,
            callback_query_id=pressed.callback_query_id,
            chat_id=pressed.chat_id,
            person=person,
            data=pressed.data,
            bot=inbound.bot,
            response_key=inbound.key,
            topic_key=inbound.topic_key,
        )
        return "callback"

    async def _message(self, inbound: InboundUpdate, message: TextReceived | CommandIssued) -> str:
        update_id = inbound.update_id
        place = Place.of(inbound, message.message_thread_id)
        files = inbound.files
        person = _person(message.person)
        allowed = person.user_id in self.allowed_users
        chat_id = message.chat_id
        # Someone else is heard only when replying to a card a route made them approver of.
        replies_to_card = (
            isinstance(message, TextReceived)
            and message.reply_to_message_id is not None
            and bool(message.text)
        )
        if not allowed and not replies_to_card:
            metrics.STRANGER_MESSAGES.inc()
            return "ignored"
        if isinstance(message, CommandIssued):
            await self._command(
                update_id, chat_id, person, message.command, message.argument, place
            )
            return "command"
        text = message.text
        if message.reply_to_message_id is not None and (text or files):
            approval_id = await self.approvals.approval_for_message(
                chat_id, message.reply_to_message_id, inbound.bot
            )
            if (
                approval_id is not None
                and text
                and await self.approvals.text_reply(
                    update_id=update_id,
                    chat_id=chat_id,
                    message_id=message.message_id,
                    approval_id=approval_id,
                    person=person,
                    text=text,
                    bot=inbound.bot,
                    message_thread_id=place.thread,
                    response_key=inbound.key,
                    topic_key=inbound.topic_key,
                    files=files,
                )
            ):
                await self._give_files(files, await self.approvals.owner_of(approval_id))
                return "reply"
            if approval_id is not None and not text and allowed:
                owner = await self.approvals.owner_of(approval_id)
                await self._give_files(files, owner)
                await self._record(
                    update_id, chat_id, person, ResponseKind.TEXT, "file", None, place,
                    files=files, client_id=owner, approval_id=approval_id,
                )  # fmt: skip
                return "file"
        if not allowed:
            metrics.STRANGER_MESSAGES.inc()
            return "ignored"
        if text or files:
            await self._record(
                update_id, chat_id, person, ResponseKind.TEXT, "message" if text else "file",
                text or None, place, files=files,
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
        place: Place,
        *,
        files: tuple[FileInfo, ...] = (),
        client_id: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        await self.responses.record(
            ResponseRecord(
                response_id=f"resp-{place.key}",
                kind=kind,
                update_id=update_id,
                user_id=person.user_id,
                username=person.display,
                chat_id=chat_id,
                client_id=client_id,
                approval_id=approval_id,
                action=action,
                text=text[:1000] if text else None,
                bot=place.bot,
                topic_key=place.topic_key,
                files=files,
                recorded_at=self.clock(),
            )
        )

    async def _reply(self, place: Place, chat_id: int, html_text: str) -> None:
        for index, part in enumerate(split_html(html_text)):
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=outbox_id(f"cmd-{place.key}", chat_id, index),
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat_id,
                    bot=place.bot,
                    message_thread_id=place.thread,
                    text=part,
                ),
            )

    async def _command(
        self,
        update_id: int,
        chat_id: int,
        person: Person,
        command: str,
        argument: str,
        place: Place,
    ) -> None:
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
        elif command == "/rules":
            reply = await self._rules(place, chat_id)
        elif command == "/mode" and not argument.strip():
            text, keyboard = await self._mode_listing()
            await self._send(
                outbox_id(f"cmd-{place.key}", chat_id, 0), chat_id, text, keyboard, place
            )
            reply = ""
        elif command == "/mode":
            reply = await self._mode_command(argument, who)
        elif command == "/quiet":
            reply = await self._quiet_command(argument, who)
        elif command in MODE_COMMANDS:
            target = argument.strip()
            reply = await self._set_mode(target or DEFAULT_REF, MODE_COMMANDS[command], who)
        else:
            reply = "Unknown command. /help lists what I understand."
        if reply:
            await self._reply(place, chat_id, reply)

    async def _rules(self, place: Place, chat_id: int) -> str:
        """Claude Code sessions' "Allow for this session" rules, a revoke button each."""
        sessions = await self.sessions.with_rules() if self.sessions is not None else []
        if not sessions:
            return "No session rules. “Allow for this session” on a Claude Code card makes one."
        signer = self.approvals.signer
        for index, session in enumerate(sessions[:RULES_LIST_MAX]):
            lines = [f"📁 <b>{safe(session.project)}</b> · <code>{safe(session.tag)}</code>"]
            lines += [f"• {safe(rule.label)}" for rule in session.rules]
            keyboard = tuple(
                (
                    InlineButton(
                        text=f"🗑 {rule.label}"[:64], callback_data=signer.sign_rule(rule.rule_id)
                    ),
                )
                for rule in session.rules[:RULES_BUTTONS_MAX]
            )
            await self._send(
                outbox_id(f"rules-{place.key}", chat_id, index),
                chat_id,
                "\n".join(lines),
                keyboard,
                place,
            )
        more = len(sessions) - RULES_LIST_MAX
        return f"{len(sessions)} session(s) with rules" + (
            f", {more} not shown" if more > 0 else ""
        )

    async def _revoke_press(self, place: Place, pressed: ButtonPressed, person: Person) -> None:
        rule_id = self.approvals.signer.verify_rule(pressed.data)
        if person.user_id not in self.allowed_users:
            answer = "Sorry, only allowed users can revoke rules."
        elif rule_id is None:
            answer = "This button is not valid."
        else:
            revoked = await self.sessions.revoke_rule(rule_id) if self.sessions else None
            if revoked is None:
                answer = "That rule is already gone."
            else:
                session, rule = revoked
                answer = f"Revoked {rule.label} ({session.project} · {session.tag})"
        if pressed.callback_query_id:
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"cbq-{pressed.callback_query_id}",
                    operation=Operation.ANSWER_CALLBACK_QUERY,
                    chat_id=pressed.chat_id,
                    bot=place.bot,
                    callback_query_id=pressed.callback_query_id,
                    text=answer[:200],
                ),
            )

    async def _pending(self, place: Place, chat_id: int, person: Person) -> str:
        open_approvals = await self.approvals.open_for(person.user_id)
        if not open_approvals:
            return "No open approvals."
        for record in open_approvals[:10]:
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=outbox_id(f"pending-{place.key}", chat_id, record.approval_id),
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

    # --- delivery modes per client ------------------------------------------------------------
    async def _set_mode(self, target: str, choice: Mode | None, who: str) -> str:
        """Set the default's mode (``target`` == "default") or one client's; the reply."""
        if target == DEFAULT_REF:
            if choice is None:
                return "The default needs a mode: nomad, local or mute."
            digested = await self.modes.set(choice, who)
            reply = f"Default for every client: {MODE_EMOJI[choice]} {safe(MODE_MESSAGES[choice])}"
        elif choice is None:
            digested = await self.modes.follow_default(target, who)
            reply = f"<code>{safe(target)}</code> now follows the default."
        else:
            digested = await self.modes.set(choice, who, target)
            reply = (
                f"<code>{safe(target)}</code>: {MODE_EMOJI[choice]} {safe(MODE_MESSAGES[choice])}"
            )
        if digested:
            reply += f"\nA digest of the {digested} event(s) suppressed while muted is on its way."
        return reply

    async def _mode_command(self, argument: str, who: str) -> str:
        words = argument.split()
        choices = {"nomad": Mode.NOMAD, "local": Mode.LOCAL, "mute": Mode.MUTE, "default": None}
        if len(words) != 2 or words[1].lower() not in choices:
            return "Usage: /mode &lt;client|default&gt; &lt;nomad|local|mute|default&gt;"
        return await self._set_mode(words[0], choices[words[1].lower()], who)

    async def _quiet_command(self, argument: str, who: str) -> str:
        usage = (
            "Usage: /quiet &lt;client|default&gt; 22:00 07:00 [time zone], "
            "/quiet &lt;client|default&gt; off, /quiet &lt;client&gt; default"
        )
        words = argument.split()
        if len(words) < 2:
            return usage
        target = None if words[0] == DEFAULT_REF else words[0]
        spec: QuietHoursSpec | None
        if len(words) == 2 and words[1].lower() == "off":
            spec = QuietHoursSpec(start=time(0), end=time(0))
        elif len(words) == 2 and words[1].lower() == "default":
            spec = None
        elif len(words) in (3, 4):
            try:
                spec = QuietHoursSpec.model_validate(
                    {"start": words[1], "end": words[2], "timezone": (words[3:] or ["UTC"])[0]}
                )
            except ValidationError as error:
                return safe(error.errors(include_url=False)[0]["msg"]) + "\n" + usage
        else:
            return usage
        result = await self.modes.set_quiet_hours(target, spec, who)
        return safe(result.message)

    async def _mode_listing(self) -> tuple[str, tuple[tuple[InlineButton, ...], ...]]:
        """The ``/mode`` message: the default, each client with a mode of its own, buttons."""
        store = self.modes.store
        default = await store.default()
        every_client = await store.clients()
        clients = every_client[:MODE_LIST_MAX]
        signer = self.approvals.signer
        lines = [
            "<b>Delivery modes</b> (🔔 nomad · 💻 local · 🔕 mute · ↩ follow the default)",
            f"Default for everyone: {MODE_EMOJI[default.mode]} {default.mode.value}"
            + _quiet_suffix(default.quiet_hours),
        ]
        rows = [
            tuple(
                InlineButton(
                    text=f"{'• ' if mode is default.mode else ''}{MODE_EMOJI[mode]} default",
                    callback_data=signer.sign_mode(DEFAULT_REF, index),
                )
                for index, mode in enumerate(MODE_CHOICES)
                if mode is not None
            )
        ]
        for client in clients:
            name = safe(client.client_id)
            quiet = _quiet_suffix(client.quiet_hours)
            if client.mode is None:
                lines.append(f"• <code>{name}</code>: ↩ follows the default{quiet}")
            else:
                lines.append(
                    f"• <code>{name}</code>: {MODE_EMOJI[client.mode]} {client.mode}{quiet}"
                )
            label = client.client_id[:20]
            rows.append(
                tuple(
                    InlineButton(
                        text=(
                            f"{'• ' if mode is client.mode else ''}"
                            f"{MODE_EMOJI[mode] if mode is not None else '↩'} {label}"
                        ),
                        callback_data=signer.sign_mode(mode_ref(client.client_id), index),
                    )
                    for index, mode in enumerate(MODE_CHOICES)
                )
            )
        if not clients:
            lines.append("No client has chosen a mode of its own yet.")
        if len(every_client) > len(clients):
            lines.append(f"… and {len(every_client) - len(clients)} more (by client id).")
        lines.append("/mode &lt;client|default&gt; &lt;nomad|local|mute|default&gt; sets one.")
        return "\n".join(lines), tuple(rows)

    async def _mode_press(
        self,
        update_id: int,
        callback_query_id: str,
        chat_id: int,
        message_id: int | None,
        person: Person,
        data: str,
        bot: str | None = None,
    ) -> None:
        """A ``/mode`` button: change that mode, answer the press, refresh the listing."""
        verified = self.approvals.signer.verify_mode(data)
        if person.user_id not in self.allowed_users:
            answer = "Sorry, only allowed users can change modes."
        elif verified is None or verified[1] >= len(MODE_CHOICES):
            answer = "This button is not valid."
        else:
            ref, index = verified
            choice = MODE_CHOICES[index]
            target: str | None = DEFAULT_REF if ref == DEFAULT_REF else None
            if target is None:
                clients = await self.modes.store.clients()
                target = next((c.client_id for c in clients if mode_ref(c.client_id) == ref), None)
            if target is None:
                answer = "That client has no mode of its own any more."
            else:
                reply = await self._set_mode(target, choice, f"tg:{person.user_id}")
                answer = html.unescape(reply.replace("<code>", "").replace("</code>", ""))
                if message_id is not None:
                    text, keyboard = await self._mode_listing()
                    await publish_outbox(
                        self.publisher,
                        OutboxMessage(
                            outbox_id=f"mode-{update_id}:{chat_id}:edit",
                            operation=Operation.EDIT_MESSAGE_TEXT,
                            chat_id=chat_id,
                            bot=bot,
                            text=text,
                            keyboard=keyboard,
                            target_message_id=message_id,
                        ),
                    )
        if callback_query_id:
            await publish_outbox(
                self.publisher,
                OutboxMessage(
                    outbox_id=f"cbq-{callback_query_id}",
                    operation=Operation.ANSWER_CALLBACK_QUERY,
                    chat_id=chat_id,
                    bot=bot,
                    callback_query_id=callback_query_id,
                    text=answer.split("\n")[0][:200],
                ),
            )

    async def _send(
        self,
        outbox_id: str,
        chat_id: int,
        text: str,
        keyboard: tuple[tuple[InlineButton, ...], ...],
        place: Place | None = None,
    ) -> None:
        await publish_outbox(
            self.publisher,
            OutboxMessage(
                outbox_id=outbox_id,
                operation=Operation.SEND_MESSAGE,
                chat_id=chat_id,
                bot=place.bot if place else None,
                message_thread_id=place.thread if place else None,
                text=text,
                keyboard=keyboard,
            ),
        )
