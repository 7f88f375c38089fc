"""Telegram reachability: bridge-manager's own periodic ``getMe``, the token kept out of sight."""

from __future__ import annotations

import time

import httpx

from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.bridge import TelegramReachability
from cctelegram_common.redaction import redact

NOT_CONFIGURED = TelegramReachability(checked=False)


class TelegramProbe:
    """Calls ``getMe`` and remembers the answer; 401/404 mean the token is rejected."""

    def __init__(
        self,
        token: str | None,
        api_base_url: str,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._token = token
        self._base = api_base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self.last: TelegramReachability = NOT_CONFIGURED

    @property
    def configured(self) -> bool:
        return bool(self._token)

    async def check(self) -> TelegramReachability:
        if not self._token:
            return NOT_CONFIGURED
        started = time.perf_counter()
        try:
            response = await self._client.get(f"{self._base}/bot{self._token}/getMe")
        except httpx.HTTPError as error:
            # httpx puts the URL (and so the token) in some messages: name the type only.
            self.last = TelegramReachability(
                checked=True,
                reachable=False,
                error=redact(f"{type(error).__name__}: {error}")[:200],
                checked_at=utc_now(),
            )
            return self.last
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        body = _json_or_empty(response)
        if response.status_code in (401, 404):
            self.last = TelegramReachability(
                checked=True,
                reachable=True,
                token_rejected=True,
                latency_ms=latency_ms,
                error=f"{response.status_code}: {body.get('description', 'rejected')}"[:200],
                checked_at=utc_now(),
            )
        elif response.status_code == 200 and body.get("ok"):
            result = body.get("result") or {}
            self.last = TelegramReachability(
                checked=True,
                reachable=True,
                latency_ms=latency_ms,
                bot_username=result.get("username") if isinstance(result, dict) else None,
                checked_at=utc_now(),
            )
        else:
            self.last = TelegramReachability(
                checked=True,
                reachable=False,
                latency_ms=latency_ms,
                error=f"HTTP {response.status_code}: {body.get('description', '')}"[:200],
                checked_at=utc_now(),
            )
        return self.last

    async def close(self) -> None:
        await self._client.aclose()


def _json_or_empty(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
