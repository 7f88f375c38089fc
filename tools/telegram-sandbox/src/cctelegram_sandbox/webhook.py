"""setWebhook's delivery loop: POST each update, retry non-2xx with doubling backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .config import Clock
from .errors import bad_request
from .updates import UpdateQueue

SECRET_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
_MAX_RETRY_AFTER_S = 3600.0


def validate_webhook_url(url: str) -> None:
    """Telegram's rules (HTTPS on 443/80/88/8443), relaxed to allow plain HTTP on loopback."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise bad_request("bad webhook: Failed to parse webhook URL") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
    if host in _LOOPBACK_HOSTS and parts.scheme in ("http", "https"):
        return
    if parts.scheme != "https":
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    if port is not None and port not in _WEBHOOK_PORTS:
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


@dataclass
class WebhookSettings:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    ip_address: str = "127.0.0.1"


@dataclass
class WebhookDelivery:
    """Delivers queued updates to one webhook URL, one at a time and in order."""

    settings: WebhookSettings
    queue: UpdateQueue
    clock: Clock
    initial_backoff_s: float
    max_backoff_s: float
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.settings.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self.queue.pending),
            "max_connections": self.settings.max_connections,
            "ip_address": self.settings.ip_address,
        }
        if self.last_error_date is not None:
            info["last_error_date"] = self.last_error_date
            info["last_error_message"] = self.last_error_message
        if self.settings.allowed_updates:
            info["allowed_updates"] = self.settings.allowed_updates
        return info

    def _record_error(self, message: str) -> None:
        self.last_error_date = int(self.clock.time())
        self.last_error_message = message

    async def _run(self) -> None:
        headers = {"Content-Type": "application/json"}
        if self.settings.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.settings.secret_token
        backoff_s = self.initial_backoff_s
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), trust_env=False) as client:
            while True:
                updates = self.queue.take(1)
                if not updates:
                    await self.queue.wait_for_change()
                    continue
                update = updates[0]
                body = json.dumps(update.to_api(), ensure_ascii=False).encode()
                delay_s = backoff_s
                try:
                    response = await client.post(self.settings.url, content=body, headers=headers)
                except httpx.TimeoutException:
                    self._record_error("Read timeout expired")
                except httpx.HTTPError as error:
                    self._record_error(f"Connection failed: {error or type(error).__name__}")
                else:
                    if response.is_success:
                        self.queue.remove(update.update_id)
                        self.delivered += 1
                        backoff_s = self.initial_backoff_s
                        continue
                    self._record_error(
                        f"Wrong response from the webhook: {response.status_code} "
                        f"{response.reason_phrase}".rstrip()
                    )
                    delay_s = _retry_after_s(response) or backoff_s
                backoff_s = min(backoff_s * 2, self.max_backoff_s)
                await asyncio.sleep(delay_s)


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None
