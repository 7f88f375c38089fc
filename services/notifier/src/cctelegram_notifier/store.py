"""What the notifier remembers in the ``cctg_deliveries`` KV: delivery records (the
idempotency key), migrated group ids and chats that blocked or removed the bot."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
from collections import OrderedDict
from typing import Protocol

import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from cctelegram_common.contracts.outbox import DeliveryRecord

_KEY_UNSAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")
# Chat facts live beside the records under a prefix an outbox id is unlikely to start with.
CHAT_KEY_PREFIX = "_chat."


def delivery_key(outbox_id: str) -> str:
    """The KV key of an outbox id: itself when KV allows it, else a readable, unique form."""
    cleaned = _KEY_UNSAFE.sub("_", outbox_id).strip(".")
    if cleaned == outbox_id and cleaned:
        return cleaned
    # Something was replaced: a short digest keeps "a:b" and "a_b" apart.
    digest = hashlib.sha256(outbox_id.encode()).hexdigest()[:12]
    return f"{cleaned[:200] or 'id'}.{digest}"


def _chat_token(chat_id: int) -> str:
    return f"m{-chat_id}" if chat_id < 0 else str(chat_id)


def chat_key(chat_id: int, fact: str) -> str:
    return f"{CHAT_KEY_PREFIX}{_chat_token(chat_id)}.{fact}"


def merged_key(chat_id: int, message_id: int) -> str:
    return chat_key(chat_id, f"merged.{message_id}")


class MergedMessage(BaseModel):
    """What one coalesced Telegram message holds (the notifier's own bookkeeping, kept beside
    the delivery records): an edit of one original rewrites only that original's part."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chat_id: int
    message_id: int
    parse_mode: str | None
    members: tuple[tuple[str, str], ...]  # (outbox id, text) in the order shown


class DeliveryStore(Protocol):
    async def get_record(self, outbox_id: str) -> DeliveryRecord | None: ...

    async def put_record(self, record: DeliveryRecord) -> None: ...

    async def migrated_to(self, chat_id: int) -> int | None: ...

    async def remember_migration(self, chat_id: int, new_chat_id: int) -> None: ...

    async def inactive_reason(self, chat_id: int) -> str | None: ...

    async def mark_inactive(self, chat_id: int, reason: str) -> None: ...

    async def clear_inactive(self, chat_id: int) -> None: ...

    async def get_merged(self, chat_id: int, message_id: int) -> MergedMessage | None: ...

    async def put_merged(self, merged: MergedMessage) -> None: ...


class KvDeliveryStore:
    """``DeliveryStore`` on the deliveries bucket, with a short in-process cache of chat facts
    (one KV read per chat per ``cache_s`` rather than per message)."""

    RECENT_RECORDS = 20_000

    def __init__(self, kv: KeyValue, cache_s: float = 30.0, bot: str | None = None) -> None:
        self.kv = kv
        self.cache_s = cache_s
        # A chat's facts (blocked, migrated, merged) are per bot: a person may block one bot
        # and not another. The default bot keeps the historic keys.
        self.bot = bot
        self._facts: dict[str, tuple[float, str | None]] = {}
        # What this process sent lately: a redelivery to us is skipped even if NATS lost
        # the record write (it is retried, but a redelivery can overtake it).
        self._recent: OrderedDict[str, DeliveryRecord] = OrderedDict()

    def _chat_key(self, chat_id: int, fact: str) -> str:
        if self.bot is None:
            return chat_key(chat_id, fact)
        return chat_key(chat_id, fact).replace(
            CHAT_KEY_PREFIX, f"{CHAT_KEY_PREFIX}b_{self.bot}.", 1
        )

    async def _get(self, key: str) -> bytes | None:
        try:
            entry = await self.kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        # nats-py 2.16 returns value=None for a TTL-expired key instead of raising.
        return entry.value or None

    async def get_record(self, outbox_id: str) -> DeliveryRecord | None:
        recent = self._recent.get(outbox_id)
        if recent is not None:
            return recent
        value = await self._get(delivery_key(outbox_id))
        return DeliveryRecord.model_validate_json(value) if value else None

    async def put_record(self, record: DeliveryRecord) -> None:
        self._recent[record.outbox_id] = record
        if len(self._recent) > self.RECENT_RECORDS:
            self._recent.popitem(last=False)
        await self.kv.put(delivery_key(record.outbox_id), record.model_dump_json().encode())

    async def _fact(self, key: str) -> str | None:
        cached = self._facts.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        value = await self._get(key)
        text = value.decode() if value else None
        self._facts[key] = (time.monotonic(), text)
        return text

    async def _set_fact(self, key: str, text: str | None) -> None:
        if text is None:
            with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                await self.kv.delete(key)
        else:
            await self.kv.put(key, text.encode())
        self._facts[key] = (time.monotonic(), text)

    async def migrated_to(self, chat_id: int) -> int | None:
        text = await self._fact(self._chat_key(chat_id, "migrated_to"))
        return int(text) if text else None

    async def remember_migration(self, chat_id: int, new_chat_id: int) -> None:
        await self._set_fact(self._chat_key(chat_id, "migrated_to"), str(new_chat_id))

    async def inactive_reason(self, chat_id: int) -> str | None:
        text = await self._fact(self._chat_key(chat_id, "inactive"))
        if not text:
            return None
        try:
            return str(json.loads(text).get("reason") or "inactive")
        except (ValueError, AttributeError):
            return text

    async def mark_inactive(self, chat_id: int, reason: str) -> None:
        await self._set_fact(
            self._chat_key(chat_id, "inactive"), json.dumps({"reason": reason, "at": time.time()})
        )

    async def clear_inactive(self, chat_id: int) -> None:
        await self._set_fact(self._chat_key(chat_id, "inactive"), None)

    async def get_merged(self, chat_id: int, message_id: int) -> MergedMessage | None:
        value = await self._get(self._chat_key(chat_id, f"merged.{message_id}"))
        return MergedMessage.model_validate_json(value) if value else None

    async def put_merged(self, merged: MergedMessage) -> None:
        await self.kv.put(
            self._chat_key(merged.chat_id, f"merged.{merged.message_id}"),
            merged.model_dump_json().encode(),
        )


class MemoryDeliveryStore:
    """``DeliveryStore`` in a dict, for unit tests and the bench's dry runs."""

    def __init__(self) -> None:
        self.records: dict[str, DeliveryRecord] = {}
        self.migrations: dict[int, int] = {}
        self.inactive: dict[int, str] = {}
        self.merged: dict[tuple[int, int], MergedMessage] = {}

    async def get_record(self, outbox_id: str) -> DeliveryRecord | None:
        return self.records.get(outbox_id)

    async def put_record(self, record: DeliveryRecord) -> None:
        self.records[record.outbox_id] = record

    async def migrated_to(self, chat_id: int) -> int | None:
        return self.migrations.get(chat_id)

    async def remember_migration(self, chat_id: int, new_chat_id: int) -> None:
        self.migrations[chat_id] = new_chat_id

    async def inactive_reason(self, chat_id: int) -> str | None:
        return self.inactive.get(chat_id)

    async def mark_inactive(self, chat_id: int, reason: str) -> None:
        self.inactive[chat_id] = reason

    async def clear_inactive(self, chat_id: int) -> None:
        self.inactive.pop(chat_id, None)

    async def get_merged(self, chat_id: int, message_id: int) -> MergedMessage | None:
        return self.merged.get((chat_id, message_id))

    async def put_merged(self, merged: MergedMessage) -> None:
        self.merged[(merged.chat_id, merged.message_id)] = merged
