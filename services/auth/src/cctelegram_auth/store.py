"""Where key records live: the ``cctg_keys`` KV bucket, behind a small interface for fakes."""

from __future__ import annotations

from typing import Protocol

import nats.js.errors
from nats.js.kv import KeyValue

from cctelegram_common.contracts.auth import KeyRecord
from cctelegram_common.nats import kv_keys


class ConflictError(Exception):
    """Someone else wrote the record first (compare-and-set lost)."""


class KeyStore(Protocol):
    async def get(self, key_id: str) -> tuple[KeyRecord, int] | None: ...
    async def create(self, record: KeyRecord) -> None: ...
    async def update(self, record: KeyRecord, revision: int) -> None: ...
    async def put(self, record: KeyRecord) -> None: ...
    async def key_ids(self) -> list[str]: ...


class NatsKeyStore:
    """The KV bucket (opened in the service's connect step)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, key_id: str) -> tuple[KeyRecord, int] | None:
        try:
            entry = await self.kv.get(key_id)
        except nats.js.errors.KeyNotFoundError:
            return None
        # nats-py 2.16 returns value=None for deleted / TTL-expired keys instead of raising.
        if entry.value is None or entry.revision is None:
            return None
        return KeyRecord.model_validate_json(entry.value), entry.revision

    async def create(self, record: KeyRecord) -> None:
        try:
            await self.kv.create(record.key_id, record.model_dump_json().encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            raise ConflictError(record.key_id) from None

    async def update(self, record: KeyRecord, revision: int) -> None:
        try:
            await self.kv.update(record.key_id, record.model_dump_json().encode(), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise ConflictError(record.key_id) from None

    async def put(self, record: KeyRecord) -> None:
        await self.kv.put(record.key_id, record.model_dump_json().encode())

    async def key_ids(self) -> list[str]:
        """Each key id once, deleted ones included (``get`` answers None for those): the
        bucket's subject list. nats-py's ``keys()`` is a watch, which returns a key written
        while it runs twice and can end before a key already on its way is handed over."""
        return await kv_keys(self.kv)


class MemoryKeyStore:
    """The same interface in a dict, with revisions: for unit tests."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[KeyRecord, int]] = {}
        self._revision = 0

    def _next(self) -> int:
        self._revision += 1
        return self._revision

    async def get(self, key_id: str) -> tuple[KeyRecord, int] | None:
        return self.records.get(key_id)

    async def create(self, record: KeyRecord) -> None:
        if record.key_id in self.records:
            raise ConflictError(record.key_id)
        self.records[record.key_id] = (record, self._next())

    async def update(self, record: KeyRecord, revision: int) -> None:
        current = self.records.get(record.key_id)
        if current is None or current[1] != revision:
            raise ConflictError(record.key_id)
        self.records[record.key_id] = (record, self._next())

    async def put(self, record: KeyRecord) -> None:
        self.records[record.key_id] = (record, self._next())

    async def key_ids(self) -> list[str]:
        return list(self.records)
