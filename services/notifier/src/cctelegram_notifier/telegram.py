"""A small Bot API client over httpx whose errors never carry the URL (it holds the token)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from cctelegram_common.telemetry import instrument_httpx
from cctelegram_notifier.settings import TelegramHttpSettings


class TelegramError(Exception):
    """Telegram answered ``ok: false`` (any status below 500, and JSON 5xx are transport)."""

    def __init__(
        self,
        method: str,
        error_code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{method}: {error_code} {description}")
        self.method = method
        self.error_code = error_code
        self.description = description
        self.parameters = parameters or {}

    @property
    def retry_after_s(self) -> float | None:
        value = self.parameters.get("retry_after")
        return float(value) if isinstance(value, int | float) else None

    @property
    def migrate_to_chat_id(self) -> int | None:
        value = self.parameters.get("migrate_to_chat_id")
        return int(value) if isinstance(value, int) else None


class TelegramUnavailableError(Exception):
    """No usable answer: timeout, refused or dropped connection, or a 5xx.

    The message names only the method and the kind of failure, never the URL.
    """

    def __init__(self, method: str, kind: str, status: int | None = None) -> None:
        super().__init__(f"{method}: {kind}" + (f" (HTTP {status})" if status else ""))
        self.method = method
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class Upload:
    """A file sent by multipart upload (sendDocument / sendPhoto): its bytes are read from
    ``chunks()`` while the request goes out, afresh for every attempt."""

    field: str  # "document" or "photo"
    file_name: str
    content_type: str
    size: int
    chunks: Callable[[], AsyncIterator[bytes]]


class BotApi(Protocol):
    """What the notifier needs from Telegram; the sandbox and fakes satisfy it too.

    ``upload`` is passed only for a file upload.
    """

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout_s: float | None = None,
        upload: Upload | None = None,
    ) -> Any: ...


class FileDownloader(Protocol):
    """Reads a file people sent (``getFile``'s ``file_path``) from Telegram's file endpoint."""

    def download(self, file_path: str) -> AsyncIterator[bytes]: ...


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")


class MultipartBody:
    """A multipart/form-data body streamed from an ``Upload``: its length is known up front
    (Telegram and the sandbox get a Content-Length), the file is never held whole."""

    def __init__(self, params: dict[str, Any], upload: Upload) -> None:
        self.boundary = uuid.uuid4().hex
        head = bytearray()
        for name, value in params.items():
            head += (
                f"--{self.boundary}\r\nContent-Disposition: form-data; "
                f'name="{_quoted(name)}"\r\n\r\n'
            ).encode()
            head += _form_value(value).encode() + b"\r\n"
        head += (
            f"--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="{upload.field}"; filename="{_quoted(upload.file_name)}"\r\n'
            f"Content-Type: {upload.content_type}\r\n\r\n"
        ).encode()
        self.head = bytes(head)
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.upload = upload
        self.length = len(self.head) + upload.size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        async for chunk in self.upload.chunks():
            yield chunk
        yield self.tail


class HttpBotApi:
    """``<base>/bot<token>/<method>`` with JSON bodies; one pooled client, replaceable."""

    def __init__(self, base_url: str, token: str, settings: TelegramHttpSettings) -> None:
        self._root = f"{base_url.rstrip('/')}/bot{token}/"
        self._file_root = f"{base_url.rstrip('/')}/file/bot{token}/"
        self._settings = settings
        self._client = self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._settings.max_connections,
            max_keepalive_connections=self._settings.max_connections,
        )
        timeout = httpx.Timeout(
            self._settings.request_timeout_s, connect=self._settings.connect_timeout_s
        )
        client = httpx.AsyncClient(timeout=timeout, limits=limits)
        # Each Bot API call becomes a "telegram <method>" span of the current message's trace
        # (the exporter strips the token from the URL attributes).
        instrument_httpx(client)
        return client

    async def reconnect(self) -> None:
        """Drop every pooled connection and start a fresh client (the ``restart`` control)."""
        old, self._client = self._client, self._new_client()
        await old.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        params: dict[str, Any],
        *,
        timeout_s: float | None = None,
        upload: Upload | None = None,
    ) -> Any:
        """The ``result`` of one call, or ``TelegramError`` / ``TelegramUnavailableError``."""
        body = {key: value for key, value in params.items() if value is not None}
        timeout = (
            httpx.Timeout(timeout_s, connect=self._settings.connect_timeout_s)
            if timeout_s is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        try:
            if upload is not None:
                multipart = MultipartBody(body, upload)
                response = await self._client.post(
                    self._root + method,
                    content=multipart,
                    headers={
                        "Content-Type": multipart.content_type,
                        "Content-Length": str(multipart.length),
                    },
                    timeout=timeout,
                )
            else:
                response = await self._client.post(self._root + method, json=body, timeout=timeout)
        except httpx.TimeoutException:
            raise TelegramUnavailableError(method, "timeout") from None
        except httpx.HTTPError as error:
            # str(error) may hold the URL; only the class name leaves this function.
            raise TelegramUnavailableError(method, type(error).__name__) from None
        return _result(method, response)

    async def download(self, file_path: str) -> AsyncIterator[bytes]:
        """``<base>/file/bot<token>/<file_path>``, streamed; errors never carry the URL."""
        try:
            async with self._client.stream("GET", self._file_root + file_path) as response:
                if response.status_code != 200:
                    raise TelegramUnavailableError(
                        "download", "file not served", response.status_code
                    )
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.TimeoutException:
            raise TelegramUnavailableError("download", "timeout") from None
        except httpx.HTTPError as error:
            raise TelegramUnavailableError("download", type(error).__name__) from None


def _result(method: str, response: httpx.Response) -> Any:
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        # A 502 from a proxy in front of Telegram is HTML; anything unparseable is transient.
        raise TelegramUnavailableError(method, "unreadable answer", response.status_code)
    if payload.get("ok") is True:
        return payload.get("result")
    code = int(payload.get("error_code") or response.status_code)
    if code >= 500:
        raise TelegramUnavailableError(method, "server error", code)
    description = str(payload.get("description") or "")
    parameters = payload.get("parameters")
    raise TelegramError(
        method, code, description, parameters if isinstance(parameters, dict) else {}
    )
