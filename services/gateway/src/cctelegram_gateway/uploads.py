"""``POST /v1/files`` (a streamed multipart upload, then a send) and ``GET /v1/files/{id}``.

The front door streams this body instead of buffering it (``UPLOAD_BODY``: 50 MB of file
plus room for the form's other fields); the multipart parser hands each piece of the file to
the object store writer as it arrives, so the gateway holds one request chunk and at most
``files.PUBLISH_WINDOW`` store chunks of it at any time.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import python_multipart
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from python_multipart.multipart import parse_options_header

from cctelegram_common import files
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.files import (
    FILE_ID_PATTERN,
    MAX_FILE_BYTES,
    FileInfo,
    KindChoice,
    SendFileResult,
)
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import jetstream
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.errors import ERROR_RESPONSES
from cctelegram_gateway.middleware import BodyTooLargeError, StreamedBody
from cctelegram_gateway.registry import ToolError
from cctelegram_gateway.rest import _refusal, principal_of, request_id_of
from cctelegram_gateway.tools.files import kind_for, new_file_id, owned_file, send_stored, too_large

log = get_logger(__name__)

FILES_PATH = "/v1/files"
# The form's text fields together: far more than title + description need.
MAX_FIELDS_BYTES = 64 * 1024
UPLOAD_BODY = StreamedBody(
    MAX_FILE_BYTES + MAX_FIELDS_BYTES + 4096,
    f"the upload is over 50 MB: a file may be at most {MAX_FILE_BYTES} bytes "
    "(Telegram's limit for documents)",
)
_TEXT_FIELDS = {
    "title",
    "description",
    "type",
    "kind",
    "send",
    "source",
    "idempotency_key",
    "content_type",
}

_UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The file (up to 50 MB; photos up to 10 MB)",
                        },
                        "title": {"type": "string", "maxLength": 200},
                        "description": {"type": "string", "maxLength": 2000},
                        "type": {"type": "string", "default": "info_notification"},
                        "kind": {
                            "type": "string",
                            "enum": [choice.value for choice in KindChoice],
                            "default": "auto",
                        },
                        "send": {
                            "type": "boolean",
                            "default": True,
                            "description": "false: only store it (send later with send_file)",
                        },
                        "source": {"type": "string", "maxLength": 100},
                        "idempotency_key": {"type": "string", "maxLength": 200},
                    },
                }
            }
        },
    }
}


class UploadRefusedError(Exception):
    def __init__(self, message: str, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class FormStream:
    """A multipart body, parsed as it arrives: text fields kept (bounded), the one file part
    handed out in pieces."""

    def __init__(self, content_type: str) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise UploadRefusedError("the body must be multipart/form-data with a boundary")
        self.fields: dict[str, str] = {}
        self.file_name: str | None = None
        self.file_type: str | None = None
        self.files_seen = 0
        self._pieces: list[bytes] = []
        self._field_bytes = 0
        self._part_name = ""
        self._part_is_file = False
        self._part_data = bytearray()
        self._header_name = b""
        self._header_value = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._parser = python_multipart.MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_part_data": self._data,
                "on_part_end": self._end,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value_part,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
        )

    def feed(self, chunk: bytes) -> list[bytes]:
        """Parse one chunk of the body; returns the file's bytes it contained."""
        try:
            self._parser.write(chunk)
        except python_multipart.exceptions.FormParserError:
            raise UploadRefusedError("the multipart body is malformed") from None
        pieces, self._pieces = self._pieces, []
        return pieces

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except python_multipart.exceptions.FormParserError:
            raise UploadRefusedError("the multipart body is malformed") from None

    def _begin(self) -> None:
        self._headers = []
        self._part_data = bytearray()
        self._part_is_file = False
        self._part_name = ""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._header_name.lower(), self._header_value))
        self._header_name = b""
        self._header_value = b""

    def _headers_finished(self) -> None:
        headers = dict(self._headers)
        _, options = parse_options_header(headers.get(b"content-disposition", b""))
        self._part_name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._part_name == "file":
            self.files_seen += 1
            if self.files_seen > 1:
                raise UploadRefusedError("send one file per request", field="file")
            self._part_is_file = True
            raw_name = options.get(b"filename", b"").decode("utf-8", "replace")
            # Only the last path segment: browsers on Windows may send a full path.
            self.file_name = raw_name.replace("\\", "/").rsplit("/", 1)[-1][:255] or "file"
            self.file_type = headers.get(b"content-type", b"").decode("latin-1") or None
        elif self._part_name not in _TEXT_FIELDS:
            raise UploadRefusedError(
                f"unknown form field {self._part_name!r}", field=self._part_name or None
            )

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._part_is_file:
            self._pieces.append(bytes(data[start:end]))
            return
        self._field_bytes += end - start
        if self._field_bytes > MAX_FIELDS_BYTES:
            raise UploadRefusedError("the form's text fields are too long", status=413)
        self._part_data += data[start:end]

    def _end(self) -> None:
        if not self._part_is_file:
            try:
                self.fields[self._part_name] = self._part_data.decode("utf-8")
            except UnicodeDecodeError:
                raise UploadRefusedError(
                    f"{self._part_name} is not UTF-8", field=self._part_name
                ) from None


def _field_choice(fields: dict[str, str]) -> tuple[KindChoice, EventType, bool]:
    try:
        kind = KindChoice(fields.get("kind", "auto") or "auto")
    except ValueError:
        raise UploadRefusedError("kind: one of auto, document, photo", field="kind") from None
    try:
        event_type = EventType(fields.get("type") or EventType.INFO_NOTIFICATION.value)
    except ValueError:
        raise UploadRefusedError("type: not an event type (see list_event_types)", "type") from None
    send_text = (fields.get("send") or "true").strip().lower()
    if send_text not in ("true", "false", "1", "0"):
        raise UploadRefusedError("send: true or false", field="send")
    for name, limit in (("title", 200), ("description", 2000), ("source", 100)):
        if len(fields.get(name, "")) > limit:
            raise UploadRefusedError(f"{name}: at most {limit} characters", field=name)
    key = fields.get("idempotency_key")
    if key is not None and not 1 <= len(key) <= 200:
        raise UploadRefusedError("idempotency_key: 1-200 characters", field="idempotency_key")
    return kind, event_type, send_text in ("true", "1")


def add_file_routes(app: FastAPI, runner: ToolRunner) -> None:
    def refused(request: Request, error: ToolError) -> Response:
        return _refusal(request, error)

    @app.post(
        FILES_PATH,
        status_code=201,
        response_model=SendFileResult,
        responses=ERROR_RESPONSES,
        tags=["files"],
        operation_id="upload_file",
        summary="Upload a file (multipart, up to 50 MB) and send it like a notification",
        openapi_extra=_UPLOAD_SCHEMA,
    )
    async def upload_file(request: Request) -> Response:
        principal = principal_of(request)
        request_id = request_id_of(request)
        try:
            runner.authorize(principal, Permission.EVENTS_SEND, "upload_file", request_id)
            await runner.spend(principal, "upload_file", request_id)
        except ToolError as error:
            return refused(request, error)
        ctx = runner.context(principal, request_id)
        file_id = new_file_id()
        writer = files.FileWriter(jetstream(runner.broker), file_id, max_bytes=MAX_FILE_BYTES)
        try:
            form = FormStream(request.headers.get("content-type", ""))
            async for chunk in request.stream():
                for piece in form.feed(chunk):
                    await writer.write(piece)
            form.finish()
            if form.files_seen == 0 or form.file_name is None:
                raise UploadRefusedError("a file is required (form field 'file')", field="file")
            kind_choice, event_type, send = _field_choice(form.fields)
            size = writer.received
            if size == 0:
                raise UploadRefusedError("the file is empty", field="file")
            content_type = files.guess_type(
                form.file_name, form.fields.get("content_type") or form.file_type
            )
            kind = kind_for(kind_choice, content_type, size)
            stored = await writer.finish(
                name=form.file_name, content_type=content_type, kind=kind, owner=principal.client_id
            )
        except files.FileTooLargeError:
            await writer.abort()
            return refused(request, too_large(field="file"))
        except BodyTooLargeError:
            # The front door's count of a body sent without Content-Length: answered here,
            # as FastAPI's error middleware would turn the exception into a 500.
            await writer.abort()
            answer = refused(request, too_large(UPLOAD_BODY.message()))
            answer.headers["Connection"] = "close"
            return answer
        except UploadRefusedError as error:
            await writer.abort()
            return refused(
                request,
                ToolError(
                    error.message,
                    status=error.status,
                    code="too_large" if error.status == 413 else "invalid",
                    field=error.field,
                ),
            )
        except ToolError as error:
            await writer.abort()
            return refused(request, error)
        except BaseException:
            await writer.abort()
            raise
        event_id = None
        if send:
            try:
                event_id = await send_stored(
                    ctx,
                    stored,
                    title=form.fields.get("title") or None,
                    description=form.fields.get("description", ""),
                    event_type=event_type,
                    source=form.fields.get("source") or "api",
                    idempotency_key=form.fields.get("idempotency_key"),
                )
            except (ToolError, ValidationError) as error:
                if isinstance(error, ValidationError):
                    error = ToolError(str(error.errors()[0].get("msg")), status=422)
                return refused(request, error)
        log.info("file_uploaded", file_id=file_id, size=stored.size, kind=stored.kind.value)
        result = SendFileResult(
            success=True,
            file=stored,
            event_id=event_id,
            message=f"{stored.kind.value} stored" + (" and queued for Telegram" if send else ""),
        )
        return JSONResponse(
            result.model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"{FILES_PATH}/{file_id}"},
        )

    @app.get(
        FILES_PATH + "/{file_id}",
        responses={
            200: {
                "content": {"application/octet-stream": {}},
                "description": "The file's bytes, with its name and type",
            },
            **ERROR_RESPONSES,
        },
        tags=["files"],
        operation_id="download_file",
        summary="Download a file you sent or one a person sent in answer to your request",
        response_class=Response,
    )
    async def download_file(request: Request, file_id: str) -> Response:
        principal = principal_of(request)
        request_id = request_id_of(request)
        try:
            runner.authorize(principal, Permission.EVENTS_READ, "download_file", request_id)
            await runner.spend(principal, "download_file", request_id)
            if not _is_file_id(file_id):
                raise ToolError(f"no file {file_id}", status=404, code="not_found", field="file_id")
            stored = await owned_file(runner.context(principal, request_id), file_id)
        except ToolError as error:
            return refused(request, error)
        js = jetstream(runner.broker)
        return StreamingResponse(
            _body(stored, js),
            media_type=stored.file.type,
            headers={
                "Content-Length": str(stored.file.size),
                "Content-Disposition": _disposition(stored.file),
                "X-Content-Type-Options": "nosniff",
            },
        )


async def _body(stored: files.StoredObject, js: Any) -> AsyncIterator[bytes]:
    async for chunk in stored.chunks(js):
        yield chunk


def _is_file_id(value: str) -> bool:
    return re.fullmatch(FILE_ID_PATTERN, value) is not None


def _disposition(file: FileInfo) -> str:
    ascii_name = file.name.encode("ascii", "replace").decode().replace('"', "'")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file.name)}"
