"""Routes: the rules in ``cctg_routes`` and the destinations (bot, chat, topic) they choose.

Every rule whose match fits is a route (fan-out). No rules, or none that fits: the default
route, every allowed user's private chat through the default bot (the behaviour before
routes existed). Rules are read from KV and cached for ``refresh_s``; the replica that
changes a rule drops its cache at once, the others see the change within ``refresh_s``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity
from cctelegram_common.contracts.routing import (
    ForumTopicRef,
    RouteList,
    RouteRule,
    TopicMode,
    bot_or_none,
)
from cctelegram_common.logging import get_logger
from cctelegram_events.ports import KvStore, load

log = get_logger(__name__)

REFRESH_S = 2.0


@dataclass(frozen=True)
class Destination:
    """One place a message goes: a chat of a bot, maybe a forum topic."""

    chat_id: int
    bot: str | None = None
    message_thread_id: int | None = None
    topic: ForumTopicRef | None = None
    rule: RouteRule | None = None

    @property
    def token(self) -> str:
        """The chat part of outbox ids: the plain chat id for the default route (as before
        routes), with the bot and topic when they differ."""
        token = str(self.chat_id)
        if self.bot is not None:
            token += f"@{self.bot}"
        if self.topic is not None:
            token += "~" + hashlib.sha256(self.topic.key.encode()).hexdigest()[:8]
        elif self.message_thread_id is not None:
            token += f"~{self.message_thread_id}"
        return token


def parse_token(token: str) -> tuple[int, str | None]:
    """(chat id, bot) of a ``Destination.token``."""
    head = token.split("~", 1)[0]
    chat, _, bot = head.partition("@")
    return int(chat), bot or None


def topic_for(
    rule: RouteRule, project: str | None, session_key: str | None, session_tag: str | None
) -> tuple[int | None, ForumTopicRef | None]:
    """The fixed thread id, or the topic to find or create, that ``rule`` asks for."""
    if isinstance(rule.topic, int):
        return rule.topic, None
    if rule.topic is TopicMode.PER_PROJECT and project:
        return None, ForumTopicRef(key=f"project:{project}"[:200], name=project[:128])
    if rule.topic is TopicMode.PER_SESSION and session_key:
        tag = session_tag or session_key[-6:]
        name = f"{project or 'session'} · {tag}"[:128]
        return None, ForumTopicRef(key=f"session:{session_key}"[:200], name=name)
    return None, None


@dataclass
class RouteBook:
    """The rules (KV) and the choice of destinations."""

    kv: KvStore | None
    refresh_s: float = REFRESH_S
    _cache: tuple[RouteRule, ...] = ()
    _loaded_at: float = field(default=float("-inf"))

    async def rules(self) -> tuple[RouteRule, ...]:
        if self.kv is None:
            return ()
        if time.monotonic() - self._loaded_at < self.refresh_s:
            return self._cache
        found: list[RouteRule] = []
        for key in sorted(await self.kv.keys(">")):
            loaded = await load(self.kv, key, RouteRule)
            if loaded is not None:
                found.append(loaded[0])
        self._cache = tuple(found)
        self._loaded_at = time.monotonic()
        return self._cache

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def list_rules(self) -> RouteList:
        self.invalidate()
        return RouteList(rules=await self.rules())

    async def add(self, rule: RouteRule, actor: str = "") -> RouteRule:
        if self.kv is None:
            raise RuntimeError("no routes bucket")
        await self.kv.put(rule.name, rule.model_dump_json().encode())
        self.invalidate()
        log.info("route_saved", name=rule.name, actor=actor, chat_id=rule.chat_id, bot=rule.bot)
        return rule

    async def remove(self, name: str, actor: str = "") -> RouteRule | None:
        if self.kv is None:
            return None
        loaded = await load(self.kv, name, RouteRule)
        if loaded is None:
            return None
        await self.kv.delete(name)
        self.invalidate()
        log.info("route_removed", name=name, actor=actor)
        return loaded[0]

    async def seed(self, rules: Iterable[RouteRule]) -> int:
        """Rules from the routes file: each written under its name (the file wins)."""
        count = 0
        for rule in rules:
            await self.add(rule, "routes-file")
            count += 1
        return count

    async def by_name(self, name: str) -> RouteRule | None:
        return next((rule for rule in await self.rules() if rule.name == name), None)

    async def select(
        self,
        *,
        client_id: str,
        project: str | None,
        event_type: EventType,
        severity: Severity,
    ) -> list[RouteRule]:
        """Every rule that fits, in name order (the fan-out)."""
        return [
            rule
            for rule in await self.rules()
            if rule.matches(client_id, project, event_type, severity)
        ]


def destinations_of(
    rules: Iterable[RouteRule],
    *,
    project: str | None,
    session_key: str | None,
    session_tag: str | None = None,
) -> list[Destination]:
    """One destination per distinct (bot, chat, topic), in rule order."""
    seen: dict[str, Destination] = {}
    for rule in rules:
        thread, topic = topic_for(rule, project, session_key, session_tag)
        destination = Destination(
            chat_id=rule.chat_id,
            bot=bot_or_none(rule.bot),
            message_thread_id=thread,
            topic=topic,
            rule=rule,
        )
        seen.setdefault(destination.token, destination)
    return list(seen.values())


def default_destinations(chats: Iterable[int]) -> list[Destination]:
    return [Destination(chat_id=chat) for chat in chats]
