"""The /bot<token>/<method> endpoint as a lean ASGI app: parse, authorise, inject faults, answer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from .bot_api import METHODS_BY_LOWER_NAME, Described
from .config import TOKEN_PATTERN
from .errors import NOT_FOUND, UNAUTHORIZED, BotApiError, bad_request
from .faults import FaultRule, default_description
from .params import Params
from .state import Sandbox
from .strict import check_known_parameters

MAX_BODY_BYTES = 60 * 1024 * 1024
_JSON_HEADERS = [(b"content-type", b"application/json")]
_INTERNAL_ERROR = BotApiError(500, "Internal Server Error")
logger = logging.getLogger("cctelegram_sandbox")


class DroppedConnection(Exception):  # noqa: N818 - it names what the client experiences
    """Raised after a response has started, so the server closes the connection mid-reply."""


class _DropFilter(logging.Filter):
    """Keeps the intentional mid-reply disconnects out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        return not (exc_info and isinstance(exc_info[1], DroppedConnection))


_DROP_FILTER = _DropFilter()


def install_log_filter() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    if _DROP_FILTER not in uvicorn_error.filters:
        uvicorn_error.addFilter(_DROP_FILTER)


# Built once: json.dumps/json.loads with options would build a new coder on every call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _encode(body: Any) -> bytes:
    return _JSON_ENCODER.encode(body).encode()


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _ClientGone(Exception):  # noqa: N818 - a condition, not a bug
    pass


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BotApiError(413, "Request Entity Too Large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _content_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Telegram refuses them, and they could not be logged back.
    raise ValueError(name)


_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _decode_form(body: bytes) -> dict[str, Any]:
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def read_params(scope: Scope, receive: Receive) -> tuple[Params, list[UploadFile]]:
    """Query string merged with a JSON, form or multipart body (the body wins)."""
    values: dict[str, Any] = {}
    if scope["query_string"]:
        values.update(_decode_form(scope["query_string"]))
    content_type = _content_type(scope)
    uploads: list[UploadFile] = []
    if content_type == "multipart/form-data":
        try:
            form = await Request(scope, receive).form(max_files=100, max_fields=1000)
        except (MultiPartException, ValueError, KeyError):
            raise bad_request("can't parse multipart/form-data request") from None
        for name, value in form.multi_items():
            values[name] = value
            if isinstance(value, UploadFile):
                uploads.append(value)
        return Params(values), uploads
    body = await _read_body(receive)
    if not body.strip():
        return Params(values), uploads
    if content_type == "application/json" or (
        content_type not in ("application/x-www-form-urlencoded",) and body.lstrip()[:1] == b"{"
    ):
        try:
            decoded = _JSON_DECODER.decode(body.decode("utf-8"))
        except ValueError:  # includes UnicodeDecodeError
            raise bad_request("can't parse JSON object") from None
        if not isinstance(decoded, dict):
            raise bad_request("JSON object expected")
        values.update(decoded)
    else:
        values.update(_decode_form(body))
    return Params(values), uploads


class BotApiEndpoint:
    """ASGI app for /bot<token>/<method>; never answers with a traceback."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send)
        except (DroppedConnection, _ClientGone, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("unexpected error in the Bot API endpoint")
            if not started:
                await _respond(send, 500, _encode(_INTERNAL_ERROR.envelope()), _JSON_HEADERS)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = self.sandbox
        started_at = sandbox.clock.time()
        token, _, method = scope["path"][4:].partition("/")
        if not TOKEN_PATTERN.fullmatch(token) or not method or "/" in method:
            await _respond(send, 404, _encode(NOT_FOUND.envelope()), _JSON_HEADERS)
            return
        configured = sandbox.config.token
        if (configured is not None and token != configured) or token in sandbox.revoked_tokens:
            await _respond(send, 401, _encode(UNAUTHORIZED.envelope()), _JSON_HEADERS)
            return
        if sandbox.bot_id is None:
            sandbox.bot_id = int(token.split(":", 1)[0])
        entry = METHODS_BY_LOWER_NAME.get(method.lower())
        uploads: list[UploadFile] = []
        try:
            params, uploads = await read_params(scope, receive)
        except BotApiError as error:
            params = Params({})
            await self._finish(send, method, params, started_at, error=error)
            return
        try:
            if entry is None:
                await self._finish(send, method, params, started_at, error=NOT_FOUND)
                return
            canonical_name, handler = entry
            fault = None
            if sandbox.faults.rules:
                chat_id = params.raw("chat_id")
                fault = sandbox.faults.take(
                    canonical_name.lower(), None if chat_id is None else str(chat_id)
                )
            if fault is not None:
                if fault.delay_s > 0:
                    await asyncio.sleep(fault.delay_s)
                if fault.status is not None and not fault.drop_connection_after_record:
                    await self._answer_fault(send, canonical_name, params, started_at, fault)
                    return
            try:
                if sandbox.config.strict_params:
                    check_known_parameters(canonical_name, params)
                result = await handler(sandbox, params)
            except BotApiError as error:
                await self._finish(send, canonical_name, params, started_at, error=error)
                return
            if fault is not None and fault.drop_connection_after_record:
                sandbox.record_call(
                    canonical_name,
                    params.raw("chat_id"),
                    200,
                    "connection dropped after the call took effect",
                    params.summary(),
                    started_at,
                )
                # Headers first: uvicorn then has to close the connection instead of sending 500.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [*_JSON_HEADERS, (b"content-length", b"4096")],
                    }
                )
                raise DroppedConnection(canonical_name)
            await self._finish(send, canonical_name, params, started_at, result=result)
        finally:
            for upload in uploads:
                await upload.close()

    async def _finish(
        self,
        send: Send,
        method: str,
        params: Params,
        started_at: float,
        *,
        result: Any = None,
        error: BotApiError | None = None,
    ) -> None:
        if error is None:
            body: dict[str, Any] = {"ok": True}
            if isinstance(result, Described):
                body["result"] = result.result
                body["description"] = result.description
            else:
                body["result"] = result
            status, description = 200, None
        else:
            body = error.envelope()
            status, description = error.error_code, error.description
        self.sandbox.record_call(
            method, params.raw("chat_id"), status, description, params.summary(), started_at
        )
        await _respond(send, status, _encode(body), _JSON_HEADERS)

    async def _answer_fault(
        self, send: Send, method: str, params: Params, started_at: float, rule: FaultRule
    ) -> None:
        status = rule.status or 500
        parameters = rule.parameters
        if status == 429 and not (parameters and "retry_after" in parameters):
            # Telegram always says how long to wait; clients rely on it.
            parameters = {**(parameters or {}), "retry_after": 1}
        description = rule.description or (
            f"Too Many Requests: retry after {parameters['retry_after']}"
            if status == 429 and parameters
            else default_description(status)
        )
        self.sandbox.record_call(
            method, params.raw("chat_id"), status, description, params.summary(), started_at
        )
        if rule.raw_body is not None:
            headers = [(b"content-type", rule.content_type.encode("latin-1"))]
            await _respond(send, status, rule.raw_body.encode(), headers)
            return
        error = BotApiError(status, description, parameters)
        await _respond(send, status, _encode(error.envelope()), _JSON_HEADERS)
