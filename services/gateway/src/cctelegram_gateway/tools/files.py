"""send_file: a file (base64 bytes, or one uploaded before) sent like a notification, its
caption rendered from title and description by the event templates.

The bytes go to the ``cctg_files`` object store; the event that carries the file's id is
stored before the call returns, and the notifier uploads the bytes to Telegram.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator

from cctelegram_common import files, subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.files import (
    MAX_FILE_BYTES,
    PHOTO_TYPES,
    FileInfo,
    FileKind,
    KindChoice,
    SendFileInput,
    SendFileResult,
)
from cctelegram_common.nats import jetstream
from cctelegram_gateway.registry import ToolContext, ToolError, registry
from cctelegram_gateway.tools.events import derive_id, may_read, publish_command

_FILE_TOO_LARGE = (
    f"a file may be at most {MAX_FILE_BYTES} bytes (50 MB, Telegram's limit for documents)"
)


def new_file_id() -> str:
    return uuid.uuid4().hex


def unavailable(error: Exception) -> ToolError:
    return ToolError(
        f"the file store is unavailable ({type(error).__name__}); try again",
        status=503,
        code="unavailable",
    )


def too_large(message: str = _FILE_TOO_LARGE, field: str | None = None) -> ToolError:
    return ToolError(message, status=413, code="too_large", field=field)


def kind_for(choice: KindChoice, content_type: str, size: int, field: str = "kind") -> FileKind:
    """The kind to send as, or a clear refusal (a photo that Telegram would not take)."""
    kind = files.choose_kind(choice, content_type, size)
    if kind is FileKind.PHOTO:
        refusal = files.photo_refusal(content_type, size)
        if refusal is not None:
            if content_type in PHOTO_TYPES:
                raise too_large(refusal, field=field)
            raise ToolError(refusal, status=422, code="invalid", field=field)
    return kind


async def owned_file(ctx: ToolContext, file_id: str) -> files.StoredObject:
    """A stored file the caller may use: its own (or any, with read:all). Another client's
    file is as absent as one that never existed."""
    try:
        stored = await files.lookup(jetstream(ctx.broker), file_id)
    except files.FileNotFoundInStoreError:
        stored = None
    except Exception as error:
        raise unavailable(error) from None
    if stored is None or not may_read(ctx, stored.owner or ""):
        raise ToolError(f"no file {file_id}", status=404, code="not_found", field="file_id")
    return stored


async def send_stored(
    ctx: ToolContext,
    stored: FileInfo,
    *,
    title: str | None,
    description: str,
    event_type: EventType,
    source: str,
    idempotency_key: str | None,
) -> str:
    """Queue the event that sends ``stored``; returns its id once JetStream has it."""
    event_id = derive_id(ctx.principal.client_id, idempotency_key, kind="file")
    event = SubmitEvent(
        event_id=event_id,
        type=event_type,
        title=(title or stored.name)[:200],
        description=description,
        source=source,
        client_id=ctx.principal.client_id,
        request_id=ctx.request_id,
        attachment=stored,
    )
    await publish_command(ctx, subjects.EVENT_SUBMIT, event, event_id)
    return event_id


async def _decoded(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), files.CHUNK_BYTES):
        yield content[start : start + files.CHUNK_BYTES]


@registry.tool(
    "send_file",
    description="Send a file to the allowed Telegram users as a document or photo, with a "
    "caption rendered like a notification (title, description, event type). Bytes as "
    "content_base64 (MCP bodies are limited to 1 MiB), or file_id of a file uploaded with "
    "POST /v1/files (up to 50 MB). Images up to 10 MB go as photos unless kind says otherwise.",
    permission=Permission.EVENTS_SEND,
)
async def send_file(ctx: ToolContext, params: SendFileInput) -> SendFileResult:
    if params.file_id is not None:
        stored = (await owned_file(ctx, params.file_id)).file
        kind = kind_for(params.kind, stored.type, stored.size)
        if kind is not stored.kind:
            stored = stored.model_copy(update={"kind": kind})
    else:
        try:
            content = base64.b64decode(params.content_base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise ToolError("content_base64 is not valid base64", field="content_base64") from None
        if not content:
            raise ToolError("the file is empty", field="content_base64")
        if len(content) > MAX_FILE_BYTES:
            raise too_large(field="content_base64")
        content_type = files.guess_type(params.file_name, params.content_type)
        kind = kind_for(params.kind, content_type, len(content))
        try:
            stored = await files.store(
                jetstream(ctx.broker),
                new_file_id(),
                _decoded(content),
                name=params.file_name,
                content_type=content_type,
                kind=kind,
                owner=ctx.principal.client_id,
                max_bytes=MAX_FILE_BYTES,
            )
        except Exception as error:
            raise unavailable(error) from None
    event_id = await send_stored(
        ctx,
        stored,
        title=params.title,
        description=params.description,
        event_type=params.type,
        source=params.source,
        idempotency_key=params.idempotency_key,
    )
    return SendFileResult(
        success=True,
        file=stored,
        event_id=event_id,
        message=f"{stored.kind.value} queued for Telegram",
    )
