"""Forum topics the notifier made for routes: which ``message_thread_id`` a topic key has in a
chat (so a topic is created once and reused across restarts), and which topic key a thread
is (so updates from inside it are attributed to its project or session).

Kept in ``cctg_bridge`` without a TTL (a topic outlives any retention window):
``topic.<bot>.<chat>.<digest of key>`` → ``{"thread": n, "key": ..., "name": ...}`` and
``topicref.<bot>.<chat>.<thread>`` → the key. Two replicas creating the same topic at once:
the first to write the record wins, the other deletes its own topic.
"""

from __future__ import annotations

import hashlib
import json
from typing import Protocol

import nats.js.errors
from nats.js.kv import KeyValue

from cctelegram_common.contracts.routing import DEFAULT_BOT

_CACHE_LIMIT = 10_000


def _chat_token(chat_id: int) -> str:
    return f"m{-chat_id}" if chat_id < 0 else str(chat_id)


def topic_key(bot: str | None, chat_id: int, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return f"topic.{bot or DEFAULT_BOT}.{_chat_token(chat_id)}.{digest}"


def topicref_key(bot: str | None, chat_id: int, thread: int) -> str:
    return f"topicref.{bot or DEFAULT_BOT}.{_chat_token(chat_id)}.{thread}"


class TopicStore(Protocol):
    async def thread_of(self, chat_id: int, key: str) -> int | None: ...

    async def claim(self, chat_id: int, key: str, name: str, thread: int) -> int:
        """Remember ``thread`` for ``key`` unless another was remembered first; the winner."""
        ...

    async def forget(self, chat_id: int, key: str, thread: int) -> None:
        """Telegram says ``thread`` is gone: forget it (only if it is still the one kept)."""
        ...

    async def key_of(self, chat_id: int, thread: int) -> str | None: ...


class KvTopicStore:
    """``TopicStore`` over the bridge bucket, with a read-through cache."""

    def __init__(self, kv: KeyValue, bot: str | None = None) -> None:
        self.kv = kv
        self.bot = bot
        self._threads: dict[tuple[int, str], int] = {}
        self._keys: dict[tuple[int, int], str | None] = {}

    def _remember(self, chat_id: int, key: str, thread: int) -> None:
        if len(self._threads) > _CACHE_LIMIT:
            self._threads.clear()
            self._keys.clear()
        self._threads[(chat_id, key)] = thread
        self._keys[(chat_id, thread)] = key

    async def thread_of(self, chat_id: int, key: str) -> int | None:
        cached = self._threads.get((chat_id, key))
        if cached is not None:
            return cached
        try:
            entry = await self.kv.get(topic_key(self.bot, chat_id, key))
        except nats.js.errors.KeyNotFoundError:
            return None
        if not entry.value:
            return None
        thread = int(json.loads(entry.value)["thread"])
        self._remember(chat_id, key, thread)
        return thread

    async def claim(self, chat_id: int, key: str, name: str, thread: int) -> int:
        value = json.dumps({"thread": thread, "key": key, "name": name}).encode()
        try:
            await self.kv.create(topic_key(self.bot, chat_id, key), value)
        except nats.js.errors.KeyWrongLastSequenceError:
            winner = await self.thread_of(chat_id, key)
            if winner is not None:
                return winner
            await self.kv.put(topic_key(self.bot, chat_id, key), value)
        await self.kv.put(topicref_key(self.bot, chat_id, thread), key.encode())
        self._remember(chat_id, key, thread)
        return thread

    async def forget(self, chat_id: int, key: str, thread: int) -> None:
        self._threads.pop((chat_id, key), None)
        self._keys.pop((chat_id, thread), None)
        try:
            entry = await self.kv.get(topic_key(self.bot, chat_id, key))
        except nats.js.errors.KeyNotFoundError:
            return
        if entry.value and int(json.loads(entry.value)["thread"]) == thread:
            await self.kv.delete(topic_key(self.bot, chat_id, key))

    async def key_of(self, chat_id: int, thread: int) -> str | None:
        if (chat_id, thread) in self._keys:
            return self._keys[(chat_id, thread)]
        try:
            entry = await self.kv.get(topicref_key(self.bot, chat_id, thread))
        except nats.js.errors.KeyNotFoundError:
            entry = None
        key = entry.value.decode() if entry is not None and entry.value else None
        self._keys[(chat_id, thread)] = key
        return key


class MemoryTopicStore:
    """``TopicStore`` in memory (unit tests)."""

    def __init__(self) -> None:
        self.threads: dict[tuple[int, str], int] = {}
        self.keys: dict[tuple[int, int], str] = {}

    async def thread_of(self, chat_id: int, key: str) -> int | None:
        return self.threads.get((chat_id, key))

    async def claim(self, chat_id: int, key: str, name: str, thread: int) -> int:
        winner = self.threads.setdefault((chat_id, key), thread)
        self.keys[(chat_id, winner)] = key
        return winner

    async def forget(self, chat_id: int, key: str, thread: int) -> None:
        if self.threads.get((chat_id, key)) == thread:
            del self.threads[(chat_id, key)]

    async def key_of(self, chat_id: int, thread: int) -> str | None:
        return self.keys.get((chat_id, thread))
