"""ASGI plumbing shared by every service's HTTP side: request metrics with bounded labels."""

from __future__ import annotations

import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cctelegram_common.metrics import HTTP_DURATION, HTTP_REQUESTS


class HttpMetricsMiddleware:
    """Counts requests and times them by route *template*, never by raw path (bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _route_template(self, scope: Scope) -> str:
        router = scope.get("router") or getattr(scope.get("app"), "router", None)
        for route in getattr(router, "routes", ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return str(getattr(route, "path", "other")) or "/"
        return "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = self._route_template(scope)
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(route, method, f"{status_holder['status'] // 100}xx").inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)
