"""Files in the ``cctg_files`` object store, streamed: written and read chunk by chunk, so a
50 MB file never sits in a process's memory whole.

The layout is the NATS Object Store's own (chunks on ``$O.<bucket>.C.<nuid>``, the object's
info as a rolled-up message on ``$O.<bucket>.M.<base64 name>``), so ``nats object get`` and
nats-py's ``ObjectStore`` read what is written here. nats-py's own ``put``/``get`` are not
used: ``get`` concatenates every chunk into one ``bytes`` (quadratic copying, the whole file
in memory) and neither takes an async source. Reads are direct gets of the next chunk, so a
slow reader holds one chunk, not a consumer's buffered backlog.

The owner (API client) and the file's kind travel in the object's headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import Header, ObjectInfo, ObjectMetaOptions

from cctelegram_common import subjects
from cctelegram_common.contracts.files import (
    MAX_PHOTO_BYTES,
    PHOTO_TYPES,
    FileInfo,
    FileKind,
    KindChoice,
)

CHUNK_BYTES = 128 * 1024
# Chunk publishes awaiting their PubAck at once: throughput without unbounded memory.
PUBLISH_WINDOW = 8
HEADER_OWNER = "Cctg-Owner"
HEADER_KIND = "Cctg-Kind"
HEADER_CONTENT_TYPE = "Content-Type"
_ROLLUP: dict[str, str] = {Header.ROLLUP.value: "sub"}


class FileTooLargeError(Exception):
    """More bytes than the limit given to the writer."""


class FileNotFoundInStoreError(Exception):
    """No such object (never stored, deleted, or aged out)."""


def guess_type(file_name: str, declared: str | None = None) -> str:
    """The MIME type to record: the declared one unless it says nothing."""
    if declared and declared.strip() and declared.strip() != "application/octet-stream":
        return declared.split(";", 1)[0].strip().lower()
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


def choose_kind(choice: KindChoice, content_type: str, size: int) -> FileKind:
    """``auto``: an image Telegram can show, up to 10 MB, is a photo; the rest documents.
    An explicit ``photo`` is checked by the caller (``photo_refusal``)."""
    if choice is KindChoice.PHOTO:
        return FileKind.PHOTO
    if choice is KindChoice.DOCUMENT:
        return FileKind.DOCUMENT
    if content_type in PHOTO_TYPES and size <= MAX_PHOTO_BYTES:
        return FileKind.PHOTO
    return FileKind.DOCUMENT


def photo_refusal(content_type: str, size: int) -> str | None:
    """Why this cannot be sent as a photo (None: it can)."""
    if content_type not in PHOTO_TYPES:
        return (
            f"a photo must be JPEG, PNG, GIF or WebP (this is {content_type}); "
            "send it as a document"
        )
    if size > MAX_PHOTO_BYTES:
        return (
            f"a photo may be at most {MAX_PHOTO_BYTES} bytes (10 MB, Telegram's limit); "
            "send it as a document (up to 50 MB)"
        )
    return None


def _meta_subject(bucket: str, name: str) -> str:
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    return f"$O.{bucket}.M.{encoded}"


def _chunk_subject(bucket: str, nuid: str) -> str:
    return f"$O.{bucket}.C.{nuid}"


class FileWriter:
    """Writes one object from chunks as they arrive; ``finish`` makes it visible.

    At most ``PUBLISH_WINDOW`` chunks (plus one partial chunk) are held at a time. Until
    ``finish`` nothing names the chunks, and ``abort`` purges them.
    """

    def __init__(
        self,
        js: JetStreamContext,
        file_id: str,
        *,
        max_bytes: int,
        bucket: str = subjects.OBJ_FILES,
    ) -> None:
        self.js = js
        self.file_id = file_id
        self.bucket = bucket
        self.stream = f"OBJ_{bucket}"
        self.max_bytes = max_bytes
        self.nuid = uuid.uuid4().hex  # a fresh chunk subject per write, as nats-py's nuid
        self.size = 0
        self.chunks = 0
        self._digest = hashlib.sha256()
        self._pending = bytearray()
        self._in_flight: list[asyncio.Task[object]] = []

    @property
    def received(self) -> int:
        """Bytes written so far (what ``finish`` will store)."""
        return self.size + len(self._pending)

    async def write(self, data: bytes) -> None:
        if self.size + len(self._pending) + len(data) > self.max_bytes:
            raise FileTooLargeError(f"over {self.max_bytes} bytes")
        self._pending += data
        while len(self._pending) >= CHUNK_BYTES:
            chunk = bytes(self._pending[:CHUNK_BYTES])
            del self._pending[:CHUNK_BYTES]
            await self._publish(chunk)

    async def _publish(self, chunk: bytes) -> None:
        self._digest.update(chunk)
        self.size += len(chunk)
        self.chunks += 1
        # Tasks start in creation order and nats-py writes a publish before it first
        # waits, so the chunks are stored in order.
        self._in_flight.append(
            asyncio.create_task(self.js.publish(_chunk_subject(self.bucket, self.nuid), chunk))
        )
        if len(self._in_flight) >= PUBLISH_WINDOW:
            await self._in_flight.pop(0)

    async def _drain(self) -> None:
        while self._in_flight:
            await self._in_flight.pop(0)

    async def finish(
        self, *, name: str, content_type: str, kind: FileKind, owner: str | None
    ) -> FileInfo:
        """Flush, then publish the object's info: from now on it can be read."""
        if self._pending:
            chunk = bytes(self._pending)
            self._pending.clear()
            await self._publish(chunk)
        await self._drain()
        # Lists, as the Go client's nats.Header spells them (nats CLI reads these objects).
        headers = {HEADER_CONTENT_TYPE: [content_type], HEADER_KIND: [kind.value]}
        if owner:
            headers[HEADER_OWNER] = [owner]
        info = ObjectInfo(
            name=self.file_id,
            bucket=self.bucket,
            nuid=self.nuid,
            size=self.size,
            chunks=self.chunks,
            mtime=datetime.now(UTC).isoformat(),
            digest="SHA-256=" + base64.urlsafe_b64encode(self._digest.digest()).decode(),
            description=name,
            headers=headers,
            options=ObjectMetaOptions(max_chunk_size=CHUNK_BYTES),
        )
        await self.js.publish(
            _meta_subject(self.bucket, self.file_id),
            json.dumps(info.as_dict()).encode(),
            headers=_ROLLUP,
        )
        return FileInfo(id=self.file_id, name=name, type=content_type, size=self.size, kind=kind)

    async def abort(self) -> None:
        for task in self._in_flight:
            task.cancel()
        for task in self._in_flight:
            with contextlib.suppress(BaseException):
                await task
        self._in_flight.clear()
        with contextlib.suppress(Exception):
            await self.js.purge_stream(self.stream, subject=_chunk_subject(self.bucket, self.nuid))


async def store(
    js: JetStreamContext,
    file_id: str,
    source: AsyncIterable[bytes],
    *,
    name: str,
    content_type: str,
    kind: FileKind,
    owner: str | None,
    max_bytes: int,
) -> FileInfo:
    """Stream ``source`` into the object ``file_id``; nothing is left behind on failure."""
    writer = FileWriter(js, file_id, max_bytes=max_bytes)
    try:
        async for data in source:
            await writer.write(data)
        return await writer.finish(name=name, content_type=content_type, kind=kind, owner=owner)
    except BaseException:
        await writer.abort()
        raise


@dataclass(frozen=True)
class StoredObject:
    """An object's info as the suite reads it."""

    file: FileInfo
    owner: str | None
    nuid: str
    digest: str
    bucket: str

    async def chunks(self, js: JetStreamContext) -> AsyncIterator[bytes]:
        """The bytes, one chunk at a time (direct gets); the digest is checked at the end."""
        subject = _chunk_subject(self.bucket, self.nuid)
        stream = f"OBJ_{self.bucket}"
        sequence = 1
        seen = 0
        digest = hashlib.sha256()
        while seen < self.file.size:
            try:
                message = await js.get_msg(
                    stream, seq=sequence, subject=subject, direct=True, next=True
                )
            except nats.js.errors.NotFoundError:
                raise FileNotFoundInStoreError(f"file {self.file.id} lost chunks") from None
            data = message.data or b""
            digest.update(data)
            seen += len(data)
            sequence = int(message.seq or 0) + 1
            yield data
        expected = self.digest.removeprefix("SHA-256=")
        if base64.urlsafe_b64encode(digest.digest()).decode() != expected:
            raise FileNotFoundInStoreError(f"file {self.file.id} does not match its digest")


def _header(headers: dict[str, object], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value else None


async def lookup(js: JetStreamContext, file_id: str) -> StoredObject:
    """The object's info, or ``FileNotFoundInStoreError``."""
    bucket = subjects.OBJ_FILES
    try:
        message = await js.get_msg(
            f"OBJ_{bucket}", subject=_meta_subject(bucket, file_id), direct=True
        )
    except nats.js.errors.NotFoundError:
        raise FileNotFoundInStoreError(file_id) from None
    raw = json.loads(message.data or b"{}")
    if raw.get("deleted"):
        raise FileNotFoundInStoreError(file_id)
    headers = raw.get("headers") or {}
    content_type = _header(headers, HEADER_CONTENT_TYPE) or "application/octet-stream"
    kind_value = _header(headers, HEADER_KIND)
    kind = FileKind.PHOTO if kind_value == FileKind.PHOTO.value else FileKind.DOCUMENT
    return StoredObject(
        file=FileInfo(
            id=file_id,
            name=str(raw.get("description") or file_id),
            type=content_type,
            size=int(raw.get("size") or 0),
            kind=kind,
        ),
        owner=_header(headers, HEADER_OWNER),
        nuid=str(raw.get("nuid") or ""),
        digest=str(raw.get("digest") or ""),
        bucket=bucket,
    )


async def assign_owner(js: JetStreamContext, file_id: str, owner: str) -> bool:
    """Give a file a person sent to the client whose card it answered. False when it is gone
    or already has an owner (the first answer's owner stays)."""
    bucket = subjects.OBJ_FILES
    try:
        message = await js.get_msg(
            f"OBJ_{bucket}", subject=_meta_subject(bucket, file_id), direct=True
        )
    except nats.js.errors.NotFoundError:
        return False
    raw = json.loads(message.data or b"{}")
    headers = dict(raw.get("headers") or {})
    if raw.get("deleted") or _header(headers, HEADER_OWNER):
        return False
    headers[HEADER_OWNER] = [owner]
    raw["headers"] = headers
    await js.publish(_meta_subject(bucket, file_id), json.dumps(raw).encode(), headers=_ROLLUP)
    return True
