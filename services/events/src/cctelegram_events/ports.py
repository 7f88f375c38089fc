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
from nats.js.kv import KeyValue
from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.outbox import OutboxMessage

ModelT = TypeVar("ModelT", bound=BaseModel)
Clock = Callable[[], datetime]
system_clock: Clock = utc_now

_KEY_SAFE = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")


def key_part(value: str) -> str:
    """A caller-chosen string as one KV key token (hashed when it has unsafe characters)."""
    if _KEY_SAFE.match(value):
        return value
    return "h" + hashlib.sha256(value.encode()).hexdigest()[:40]


class CasConflictError(Exception):
    """The key changed (or exists) since it was read: re-read and decide again."""


@dataclass(frozen=True)
class KvEntry:
    key: str
    value: bytes
    revision: int


class KvStore(Protocol):
    async def get(self, key: str) -> KvEntry | None: ...
    async def create(self, key: str, value: bytes) -> int: ...
    async def update(self, key: str, value: bytes, revision: int) -> int: ...
    async def put(self, key: str, value: bytes) -> int: ...
    async def delete(self, key: str) -> None: ...
    async def keys(self, pattern: str = ">") -> list[str]: ...


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

    async def create(self, key: str, value: bytes) -> int:
        try:
            revision: int = await self.bucket.create(key, value)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise CasConflictError(key) from None
        return revision

    async def update(self, key: str, value: bytes, revision: int) -> int:
        try:
            new_revision: int = await self.bucket.update(key, value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise CasConflictError(key) from None
        return new_revision

    async def put(self, key: str, value: bytes) -> int:
        revision: int = await self.bucket.put(key, value)
        return revision

    async def delete(self, key: str) -> None:
        await self.bucket.purge(key)

    async def keys(self, pattern: str = ">") -> list[str]:
        """Keys matching a NATS wildcard pattern (server-side filter, no values fetched)."""
        watcher = await self.bucket.watch(pattern, ignore_deletes=True, meta_only=True)
        found: list[str] = []
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=5.0)  # type: ignore[no-untyped-call]
                except nats.errors.TimeoutError:
                    break
                if entry is None:
                    break
                found.append(entry.key)
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return found
