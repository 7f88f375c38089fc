"""The sandbox's world: one bot, its chats and messages, updates, calls, faults and clock."""

from __future__ import annotations

import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .config import ControllableClock, SandboxConfig
from .entities import detect_entities
from .errors import (
    BLOCKED,
    CHAT_ID_EMPTY,
    CHAT_NOT_FOUND,
    DEACTIVATED,
    GROUP_UPGRADED,
    BotApiError,
    bad_request,
    forbidden,
)
from .faults import FaultInjector
from .feed import ChangeFeed
from .files import FileStore
from .flood import FloodControl
from .keyboards import keyboard_callback_data
from .models import (
    CHAT_KINDS,
    GENERAL_TOPIC_ID,
    Chat,
    JsonDict,
    StoredFile,
    StoredMessage,
    Topic,
    User,
)
from .updates import UpdateQueue
from .webhook import WebhookDelivery

MESSAGE_ACCESS_WINDOW_S = 48 * 3600.0
_GROUP_ID_BASE = 4_000_000_000
_SUPERGROUP_ID_BASE = 1_002_000_000_000
_FIRST_USER_ID = 100_001


class ControlError(Exception):
    """A refused control-API request (not a Bot API error): answered as {"error": ...}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class CallbackQueryRecord:
    id: str
    chat_id: int
    message_id: int
    user: User
    data: str
    created_at: float
    answered: bool = False
    answer: JsonDict | None = None

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "from": self.user.to_api(),
            "data": self.data,
            "created_at": self.created_at,
            "answered": self.answered,
            "answer": self.answer,
        }


def _chat_instance(chat_id: int) -> str:
    # Stable per chat and opaque, like Telegram's.
    return str((chat_id * 0x9E3779B97F4A7C15) % (1 << 63))


class Sandbox:
    """All state of one emulated bot; lives on the server's event loop."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock = ControllableClock(config.clock)
        self.flood = FloodControl(
            self.clock, enabled=config.flood_control, rate_scale=config.rate_scale
        )
        self.revoked_tokens = set(config.revoked_tokens)
        self.bot_id: int | None = int(config.token.split(":", 1)[0]) if config.token else None
        self.feed = ChangeFeed()
        first_update_id = config.first_update_id
        if first_update_id is None:
            first_update_id = int(time.time())
        self.updates = UpdateQueue(self.clock, first_update_id)
        self.webhook: WebhookDelivery | None = None
        self._bot_user: User | None = None
        self._reset_world()

    def _reset_world(self) -> None:
        self.users: dict[int, User] = {}
        self.chats: dict[int, Chat] = {}
        self.chats_by_username: dict[str, Chat] = {}
        self.files = FileStore()
        self.faults = FaultInjector()
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.calls: deque[JsonDict] = deque(maxlen=self.config.calls_log_size)
        self.call_counts: Counter[str] = Counter()
        self.status_counts: Counter[int] = Counter()
        self.next_call_id = 1
        self.commands: dict[str, list[JsonDict]] = {}
        self.last_webhook_change_at: float | None = None
        self.messages_by_bot = 0
        self.messages_by_people = 0
        self._next_user_id = _FIRST_USER_ID
        self._next_group_number = 1
        self.started_at = self.clock.time()
        if self.config.demo_chats:
            self.seed_demo_chats()

    async def reset(self) -> None:
        """Forget everything (chats, messages, updates, calls, faults, webhook, flood windows)."""
        if self.webhook is not None:
            await self.webhook.stop()
            self.webhook = None
        self.updates.webhook_active = False
        self.updates.clear()
        self.updates.set_allowed_updates(None)
        self.flood.reset()
        self._reset_world()
        self.feed.publish("chats")

    async def shutdown(self) -> None:
        self.updates.close()
        self.feed.close()
        if self.webhook is not None:
            await self.webhook.stop()

    # -- the bot ---------------------------------------------------------------------------

    def bot_user(self) -> User:
        bot_id = self.bot_id or 1
        cached = self._bot_user
        if cached is None or cached.id != bot_id:
            cached = self._bot_user = User(
                id=bot_id,
                first_name=self.config.bot_first_name,
                is_bot=True,
                username=self.config.bot_username,
            )
        return cached

    def get_me(self) -> JsonDict:
        me = self.bot_user().to_api()
        me.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return me

    # -- people and chats ------------------------------------------------------------------

    def user(self, user_id: int | None = None, **fields: Any) -> User:
        """The user with this id (created on first mention), or a new one when id is None."""
        if user_id is None:
            user_id = self._next_user_id
        self._next_user_id = max(self._next_user_id, user_id + 1)
        existing = self.users.get(user_id)
        if existing is None:
            existing = User(id=user_id, first_name=fields.get("first_name") or f"User {user_id}")
            self.users[user_id] = existing
        for name in ("first_name", "last_name", "username", "language_code"):
            if fields.get(name):
                setattr(existing, name, fields[name])
        return existing

    def create_chat(
        self,
        kind: str,
        *,
        chat_id: int | None = None,
        title: str | None = None,
        user: JsonDict | None = None,
        username: str | None = None,
        topics: list[str] | None = None,
    ) -> Chat:
        if kind not in CHAT_KINDS:
            raise ControlError(400, f"type must be one of {', '.join(CHAT_KINDS)}")
        user_fields = dict(user or {})
        if kind == "private":
            person = self.user(user_fields.pop("id", chat_id), **user_fields)
            chat_id = person.id
            if chat_id <= 0:
                raise ControlError(400, "a private chat's id is its user's id and must be > 0")
        else:
            if chat_id is None:
                chat_id = self._new_group_id(kind)
            if chat_id >= 0:
                raise ControlError(400, "group, supergroup, forum and channel ids are negative")
            person = self.user(user_fields.pop("id", None), **user_fields)
        if chat_id in self.chats:
            raise ControlError(409, f"chat {chat_id} already exists")
        chat = Chat(
            id=chat_id,
            kind=kind,
            title=title or (None if kind == "private" else f"Sandbox {kind} {-chat_id % 1000}"),
            user=person,
            username=username,
            created_at=self.clock.time(),
        )
        self.chats[chat_id] = chat
        if username:
            self.chats_by_username[username.lower().lstrip("@")] = chat
        if kind == "forum":
            chat.topics[GENERAL_TOPIC_ID] = Topic(GENERAL_TOPIC_ID, "General")
            chat.next_message_id = 2
            for name in topics or []:
                self.create_topic(chat, name)
        self.feed.publish("chats")
        return chat

    def _new_group_id(self, kind: str) -> int:
        number = self._next_group_number
        self._next_group_number += 1
        base = _GROUP_ID_BASE if kind == "group" else _SUPERGROUP_ID_BASE
        while -(base + number) in self.chats:
            number += 1
        return -(base + number)

    def create_topic(
        self, chat: Chat, name: str, *, by_bot: bool = False, icon_color: int | None = None
    ) -> Topic:
        if not chat.is_forum:
            raise ControlError(400, "only forum chats have topics")
        if not name or len(name) > 128:
            raise ControlError(400, "a topic name has 1-128 characters")
        thread_id = chat.allocate_message_id()
        topic = Topic(thread_id, name) if icon_color is None else Topic(thread_id, name, icon_color)
        chat.topics[thread_id] = topic
        chat.messages[thread_id] = StoredMessage(
            chat=chat,
            message_id=thread_id,
            date=int(self.clock.time()),
            sender=self.bot_user() if by_bot else chat.user,
            from_bot=by_bot,
            thread_id=thread_id,
            service={"forum_topic_created": {"name": name, "icon_color": topic.icon_color}},
        )
        self.feed.publish(f"chat:{chat.id}")
        return topic

    def set_topic_state(self, chat: Chat, thread_id: int, state: str) -> Topic:
        """A person (an admin) closes, reopens or deletes a topic. Deleting removes its
        messages too, as Telegram does."""
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise ControlError(404, f"topic {thread_id} not found")
        if state not in ("open", "closed", "deleted"):
            raise ControlError(400, "state must be open, closed or deleted")
        if thread_id == 1 and state == "deleted":
            raise ControlError(400, "the General topic cannot be deleted")
        topic.closed = state == "closed"
        if state == "deleted":
            topic.deleted = True
            for message in chat.messages.values():
                if message.thread_id == thread_id or message.message_id == thread_id:
                    message.deleted = True
        self.feed.publish(f"chat:{chat.id}")
        self.feed.publish("chats")
        return topic

    def seed_demo_chats(self) -> None:
        self.create_chat(
            "private",
            user={"id": 1001, "first_name": "Alice", "username": "alice"},
        )
        self.create_chat(
            "group",
            chat_id=-4000000001,
            title="Ops team",
            user={"id": 1002, "first_name": "Bob", "username": "bob"},
        )
        self.create_chat(
            "forum",
            chat_id=-1002000000001,
            title="Deployments",
            user={"id": 1003, "first_name": "Carol", "username": "carol"},
            topics=["Approvals", "Alerts"],
        )

    def control_chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise ControlError(404, f"chat {chat_id} not found")
        return chat

    def chat_view(self, chat: Chat) -> JsonDict:
        last = next(
            (message for message in reversed(chat.messages.values()) if not message.deleted),
            None,
        )
        return {
            "id": chat.id,
            "type": chat.kind,
            "telegram_type": chat.telegram_type,
            "title": chat.display_name,
            "username": chat.username,
            "user": None if chat.user is None else chat.user.to_api(),
            "state": chat.state,
            "migrate_to_chat_id": chat.migrate_to_chat_id,
            "topics": [
                {
                    "message_thread_id": topic.message_thread_id,
                    "name": topic.name,
                    "closed": topic.closed,
                }
                for topic in chat.topics.values()
                if not topic.deleted
            ],
            "message_count": sum(1 for message in chat.messages.values() if not message.deleted),
            "last_message": None if last is None else _preview(last),
            "chat": chat.to_api(),
        }

    # -- what the bot may do in a chat -----------------------------------------------------

    def resolve_chat_id(self, raw: Any) -> Chat:
        """The chat a Bot API call names, or Telegram's error for an empty or unknown id."""
        if raw is None or raw == "":
            raise bad_request(CHAT_ID_EMPTY)
        chat: Chat | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            chat = self.chats.get(raw)
            chat_id: int | None = raw
        else:
            text = str(raw).strip()
            chat_id = None
            if text.startswith("@"):
                chat = self.chats_by_username.get(text[1:].lower())
            else:
                try:
                    chat_id = int(text)
                except ValueError:
                    chat_id = None
                else:
                    chat = self.chats.get(chat_id)
        if chat is None and chat_id is not None and chat_id != 0 and self.config.auto_create_chats:
            kind = "private" if chat_id > 0 else "group"
            if chat_id < -1_000_000_000_000:
                kind = "supergroup"
            chat = self.create_chat(kind, chat_id=chat_id)
        if chat is None:
            raise bad_request(CHAT_NOT_FOUND)
        return chat

    def writable_chat(self, raw: Any) -> Chat:
        """resolve_chat_id, plus the errors for chats the bot can no longer write to."""
        chat = self.resolve_chat_id(raw)
        state = chat.state
        if state == "active":
            return chat
        if state == "blocked":
            raise forbidden(BLOCKED)
        if state == "deactivated":
            raise forbidden(DEACTIVATED)
        if state == "kicked":
            raise forbidden(f"bot was kicked from the {chat.telegram_type} chat")
        raise BotApiError(
            400, f"Bad Request: {GROUP_UPGRADED}", {"migrate_to_chat_id": chat.migrate_to_chat_id}
        )

    def store_message(
        self,
        chat: Chat,
        *,
        from_bot: bool,
        sender: User | None,
        text: str | None = None,
        entities: list[JsonDict] | None = None,
        caption: str | None = None,
        caption_entities: list[JsonDict] | None = None,
        file: StoredFile | None = None,
        reply_markup: JsonDict | None = None,
        thread_id: int | None = None,
        reply_to: StoredMessage | None = None,
        parse_mode: str | None = None,
        source_text: str | None = None,
        service: JsonDict | None = None,
    ) -> StoredMessage:
        message = StoredMessage(
            chat=chat,
            message_id=chat.allocate_message_id(),
            date=int(self.clock.time()),
            sender=sender,
            from_bot=from_bot,
            text=text,
            entities=entities or [],
            caption=caption,
            caption_entities=caption_entities or [],
            file=file,
            reply_markup=reply_markup,
            thread_id=thread_id,
            reply_to=reply_to,
            parse_mode=parse_mode,
            source_text=source_text,
            service=service,
        )
        chat.messages[message.message_id] = message
        if from_bot:
            self.messages_by_bot += 1
        else:
            self.messages_by_people += 1
        self.feed.publish(f"chat:{chat.id}")
        return message

    def live_message(self, chat: Chat, message_id: int | None) -> StoredMessage | None:
        if message_id is None:
            return None
        message = chat.messages.get(message_id)
        return None if message is None or message.deleted else message

    def is_accessible(self, message: StoredMessage) -> bool:
        return self.clock.time() - message.date < MESSAGE_ACCESS_WINDOW_S

    # -- what people do (control API) ------------------------------------------------------

    def _actor(self, chat: Chat, user_id: int | None, user: JsonDict | None) -> User:
        fields = dict(user or {})
        user_id = fields.pop("id", user_id)
        if user_id is None:
            if chat.user is None:
                raise ControlError(400, "user_id is required for this chat")
            return chat.user
        return self.user(int(user_id), **fields)

    def person_writes(
        self,
        chat: Chat,
        *,
        text: str | None,
        user_id: int | None = None,
        user: JsonDict | None = None,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        document: StoredFile | None = None,
        caption: str | None = None,
    ) -> tuple[StoredMessage, int | None]:
        """A person sends a message; returns it and the update_id that carries it to the bot."""
        if chat.state == "migrated":
            raise ControlError(400, f"chat migrated to {chat.migrate_to_chat_id}")
        if not text and document is None:
            raise ControlError(400, "text (or a document) is required")
        if text is not None and len(text) > 4096:
            raise ControlError(400, "a message has at most 4096 characters")
        sender = None if chat.kind == "channel" else self._actor(chat, user_id, user)
        reply_to = self.live_message(chat, reply_to_message_id)
        if reply_to_message_id is not None and reply_to is None:
            raise ControlError(404, f"message {reply_to_message_id} not found")
        thread_id = message_thread_id or None
        if (
            thread_id is not None
            and thread_id not in chat.topics
            and (chat.is_forum or thread_id not in chat.messages)
        ):
            raise ControlError(404, f"message thread {thread_id} not found")
        if thread_id is None and reply_to is not None:
            thread_id = reply_to.thread_id
        if thread_id == GENERAL_TOPIC_ID:
            thread_id = None
        if thread_id is not None and reply_to is None and chat.is_forum:
            reply_to = chat.messages.get(thread_id)
        message = self.store_message(
            chat,
            from_bot=False,
            sender=sender,
            text=text or None,
            entities=detect_entities(text) if text else None,
            caption=caption if document is not None else None,
            caption_entities=detect_entities(caption) if caption and document else None,
            file=document,
            thread_id=thread_id,
            reply_to=reply_to,
        )
        update_type = "channel_post" if chat.kind == "channel" else "message"
        update = self.updates.enqueue(update_type, message.to_api())
        return message, None if update is None else update.update_id

    def press_button(
        self,
        chat: Chat,
        message_id: int,
        *,
        user_id: int | None = None,
        user: JsonDict | None = None,
        callback_data: str | None = None,
        button_text: str | None = None,
        forge: bool = False,
    ) -> CallbackQueryRecord:
        """A person presses an inline button: a callback_query update the bot must answer."""
        message = self.live_message(chat, message_id)
        if message is None:
            raise ControlError(404, f"message {message_id} not found in chat {chat.id}")
        buttons = keyboard_callback_data(message.reply_markup)
        if button_text is not None and callback_data is None:
            matching = [data for text, data in buttons if text == button_text]
            if not matching:
                raise ControlError(400, f"no callback button with text {button_text!r}")
            callback_data = matching[0]
        if callback_data is None:
            raise ControlError(400, "callback_data or text is required")
        if not forge and callback_data not in {data for _, data in buttons}:
            raise ControlError(
                400, "callback_data is not on the message's keyboard (pass forge=true to send it)"
            )
        presser = self._actor(chat, user_id, user)
        query_id = str(secrets.randbits(63))
        while query_id in self.callback_queries:
            query_id = str(secrets.randbits(63))
        record = CallbackQueryRecord(
            id=query_id,
            chat_id=chat.id,
            message_id=message_id,
            user=presser,
            data=callback_data,
            created_at=self.clock.time(),
        )
        self.callback_queries[query_id] = record
        if self.is_accessible(message):
            message_json = message.to_api()
        else:
            message_json = {"chat": chat.to_api(), "message_id": message_id, "date": 0}
        payload = {
            "id": query_id,
            "from": presser.to_api(),
            "message": message_json,
            "chat_instance": _chat_instance(chat.id),
            "data": callback_data,
        }
        self.updates.enqueue("callback_query", payload)
        self.feed.publish(f"chat:{chat.id}")
        return record

    def set_chat_state(
        self, chat: Chat, state: str, migrate_to_chat_id: int | None = None
    ) -> Chat | None:
        """Block, deactivate, kick or migrate a chat; returns the new supergroup on migration."""
        previous = chat.state
        if state == "blocked" and chat.kind != "private":
            raise ControlError(400, "only private chats can block the bot; use kicked")
        if state == "deactivated" and chat.kind != "private":
            raise ControlError(400, "only private chats have a user who can be deactivated")
        if state == "kicked" and chat.kind == "private":
            raise ControlError(400, "a person blocks the bot in a private chat; use blocked")
        new_chat = None
        if state == "migrated":
            new_chat = self._migrate(chat, migrate_to_chat_id)
        elif state not in ("active", "blocked", "deactivated", "kicked"):
            raise ControlError(
                400, "state must be active, blocked, deactivated, kicked or migrated"
            )
        chat.state = state
        if state in ("blocked", "kicked") and previous != state:
            status = "left" if chat.kind == "group" else "kicked"
            self._member_update(chat, "member", status)
        elif state == "active" and previous in ("blocked", "kicked"):
            self._member_update(chat, "kicked" if previous == "blocked" else "left", "member")
        self.feed.publish("chats")
        self.feed.publish(f"chat:{chat.id}")
        return new_chat

    def _member_update(self, chat: Chat, old_status: str, new_status: str) -> None:
        bot = self.bot_user().to_api()
        new_member: JsonDict = {"user": bot, "status": new_status}
        if new_status == "kicked":
            new_member["until_date"] = 0
        actor = chat.user or self.user()
        self.updates.enqueue(
            "my_chat_member",
            {
                "chat": chat.to_api(),
                "from": actor.to_api(),
                "date": int(self.clock.time()),
                "old_chat_member": {"user": bot, "status": old_status},
                "new_chat_member": new_member,
            },
        )

    def _migrate(self, chat: Chat, migrate_to_chat_id: int | None) -> Chat:
        if chat.kind != "group":
            raise ControlError(400, "only a basic group can be upgraded to a supergroup")
        if chat.state == "migrated":
            raise ControlError(400, f"chat already migrated to {chat.migrate_to_chat_id}")
        target = self.chats.get(migrate_to_chat_id) if migrate_to_chat_id else None
        if target is None:
            target = self.create_chat(
                "supergroup",
                chat_id=migrate_to_chat_id,
                title=chat.title,
                user=None if chat.user is None else chat.user.to_api(),
            )
        chat.migrate_to_chat_id = target.id
        actor = chat.user
        for source, service in (
            (chat, {"migrate_to_chat_id": target.id}),
            (target, {"migrate_from_chat_id": chat.id}),
        ):
            message = self.store_message(source, from_bot=False, sender=actor, service=service)
            self.updates.enqueue("message", message.to_api())
        return target

    # -- the calls log ---------------------------------------------------------------------

    def record_call(
        self,
        method: str,
        chat_id: Any,
        status: int,
        description: str | None,
        params: JsonDict,
        started_at: float,
    ) -> None:
        if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
            chat_id = int(chat_id)
        self.calls.append(
            {
                "id": self.next_call_id,
                "timestamp": started_at,
                "method": method,
                "chat_id": chat_id,
                "status": status,
                "ok": status == 200,
                "description": description,
                "params": params,
            }
        )
        self.next_call_id += 1
        self.call_counts[method] += 1
        self.status_counts[status] += 1
        if self.feed.listeners:
            self.feed.publish("calls")

    def stats(self) -> JsonDict:
        return {
            "calls_total": sum(self.call_counts.values()),
            "calls_by_method": dict(self.call_counts),
            "calls_by_status": {str(status): n for status, n in self.status_counts.items()},
            "messages_by_bot": self.messages_by_bot,
            "messages_by_people": self.messages_by_people,
            "chats": len(self.chats),
            "pending_updates": len(self.updates.pending),
            "next_update_id": self.updates.next_update_id,
            "callback_queries": len(self.callback_queries),
            "unanswered_callback_queries": sum(
                1 for query in self.callback_queries.values() if not query.answered
            ),
            "flood": self.flood.snapshot(),
            "webhook": None if self.webhook is None else self.webhook.info(),
            "faults_armed": len(self.faults.rules),
            "clock": self.clock.time(),
        }


def _preview(message: StoredMessage) -> JsonDict:
    text = message.text or message.caption or ""
    if not text and message.file is not None:
        text = message.file.file_name or message.file.kind
    if not text and message.service:
        text = next(iter(message.service))
    return {
        "message_id": message.message_id,
        "sender": "bot" if message.from_bot else "user",
        "text": text[:120],
        "date": message.date,
    }
