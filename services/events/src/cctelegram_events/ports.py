"""The collaborators the rules need (a KV store, a publisher, a clock), and their NATS adapters.

The rules take these as parameters, so unit tests pass in-memory fakes and the app passes
the JetStream-backed adapters below.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from pydantic import BaseModel

from cctelegram_common import due_index, subjects
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.outbox import OutboxMessage
from cctelegram_common.nats import (
    KvConflictError,
    kv_keys,
    kv_put_with_ttl,
    whole_seconds_ttl,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
Clock = Callable[[], datetime]
system_clock: Clock = utc_now

_KEY_SAFE = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")


def key_part(value: str) -> str:
    """A caller-chosen string as one KV key token (hashed when it has unsafe characters)."""
    if _KEY_SAFE.match(value):
        return value
    return "h" + hashlib.sha256(value.encode()).hexdigest()[:40]


# The key changed (or exists) since it was read: re-read and decide again. The suite's one
# KV conflict error (what ``kv_put_with_ttl`` raises), under the domain's name.
CasConflictError = KvConflictError


@dataclass(frozen=True)
class KvEntry:
    key: str
    value: bytes
    revision: int


class KvStore(Protocol):
    """A KV bucket. ``ttl_s``: NATS removes the entry that long after this write (per-key
    TTL; the bucket must allow it); None keeps it."""

    async def get(self, key: str) -> KvEntry | None: ...
    async def create(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int: ...
    async def update(
        self, key: str, value: bytes, revision: int, *, ttl_s: float | None = None
    ) -> int: ...
    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int: ...
    async def delete(self, key: str) -> None: ...
    async def keys(self, pattern: str = ">") -> list[str]: ...


class DueIndex(Protocol):
    """Open approvals by due time: the store calls back (the expiry consumer) when one falls
    due, so nothing scans. ``remove`` when an approval closes; ``open_ids`` for /pending."""

    async def schedule(self, approval_id: str, due_at: datetime) -> None: ...
    async def remove(self, approval_id: str) -> None: ...
    async def open_ids(self) -> list[str]: ...


class MemoryDueIndex:
    """``DueIndex`` in memory (unit tests, and the default of a service built by hand): holds
    open approvals only, so it is as big as what is open."""

    def __init__(self) -> None:
        self.due_at: dict[str, datetime] = {}

    async def schedule(self, approval_id: str, due_at: datetime) -> None:
        self.due_at[approval_id] = due_at

    async def remove(self, approval_id: str) -> None:
        self.due_at.pop(approval_id, None)

    async def open_ids(self) -> list[str]:
        return list(self.due_at)

    def fire_due(self, now: datetime) -> list[str]:
        """What NATS would have fired by ``now``, taken out of the index as the server does
        (tests drive the expiry with it)."""
        fired = [approval_id for approval_id, at in self.due_at.items() if at <= now]
        for approval_id in fired:
            del self.due_at[approval_id]
        return fired


class Publisher(Protocol):
    async def publish(self, subject: str, payload: BaseModel, *, msg_id: str, stream: str) -> None:
        """Store ``payload`` on ``stream`` with ``Nats-Msg-Id`` = ``msg_id`` (waits for PubAck)."""
        ...


async def publish_outbox(publisher: Publisher, message: OutboxMessage) -> None:
    """One Telegram operation for the notifier; the outbox id is the dedup id."""
    await publisher.publish(
        subjects.outbox_subject(message.chat_id, message.bot),
        message,
        msg_id=message.outbox_id,
        stream=subjects.STREAM_OUTBOX,
    )


async def load(kv: KvStore, key: str, model: type[ModelT]) -> tuple[ModelT, int] | None:
    """A stored model and its revision, or None."""
    entry = await kv.get(key)
    if entry is None or not entry.value:
        return None
    return model.model_validate_json(entry.value), entry.revision


# --- NATS adapters ---------------------------------------------------------------------------


class NatsKv:
    """``KvStore`` over a JetStream KV bucket."""

    def __init__(self, bucket: KeyValue) -> None:
        self.bucket = bucket

    async def get(self, key: str) -> KvEntry | None:
        try:
            entry = await self.bucket.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        if entry.value is None or entry.revision is None:
            return None
        return KvEntry(key, entry.value, entry.revision)

    async def create(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int:
        try:
            revision: int = await self.bucket.create(
                key, value, msg_ttl=None if ttl_s is None else whole_seconds_ttl(ttl_s)
            )
        except nats.js.errors.KeyWrongLastSequenceError:
            raise CasConflictError(key) from None
        return revision

    async def update(
        self, key: str, value: bytes, revision: int, *, ttl_s: float | None = None
    ) -> int:
        if ttl_s is None:
            try:
                new_revision: int = await self.bucket.update(key, value, last=revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                raise CasConflictError(key) from None
            return new_revision
        # nats-py's update takes no TTL: the KV write with one, as a compare-and-set.
        return await kv_put_with_ttl(
            self.bucket._js, self.bucket._name, key, value, ttl_s, expected_revision=revision
        )

    async def put(self, key: str, value: bytes, *, ttl_s: float | None = None) -> int:
        if ttl_s is None:
            revision: int = await self.bucket.put(key, value)
            return revision
        return await kv_put_with_ttl(self.bucket._js, self.bucket._name, key, value, ttl_s)

    async def delete(self, key: str) -> None:
        await self.bucket.purge(key)

    async def keys(self, pattern: str = ">") -> list[str]:
        """Keys matching a NATS wildcard pattern, deleted ones included (callers load each
        key, and a deleted one loads as None): the stream's subject list, no values read."""
        return await kv_keys(self.bucket, pattern)


class NatsDueIndex:
    """``DueIndex`` over ``CCTG_APPROVAL_DUE`` (NATS message schedules; see due_index.py)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def schedule(self, approval_id: str, due_at: datetime) -> None:
        await due_index.schedule_expiry(self.js, approval_id, due_at)

    async def remove(self, approval_id: str) -> None:
        await due_index.unschedule_expiry(self.js, approval_id)

    async def open_ids(self) -> list[str]:
        return await due_index.scheduled_ids(self.js)
