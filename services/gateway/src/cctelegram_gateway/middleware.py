"""The gateway's front door, as one ASGI middleware that runs before any body is read:
request id, Host/Origin checks, bearer authentication, body-size limit, last-resort errors."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cctelegram_common.apikeys import parse_key
from cctelegram_common.contracts.audit import AuditOutcome
from cctelegram_common.contracts.auth import Principal
from cctelegram_common.logging import get_logger
from cctelegram_gateway import metrics
from cctelegram_gateway.auditing import Auditor
from cctelegram_gateway.errors import send_error
from cctelegram_gateway.verifier import AuthUnavailableError, Verifier

log = get_logger(__name__)

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
# Paths anyone may reach: probes, metrics, the API description, Telegram's own webhook
# (it authenticates with its secret-token header instead of a key).
PUBLIC_PATHS = frozenset(
    {"/health", "/health/ready", "/metrics", "/openapi.json", "/telegram/webhook"}
)
# Probes and scrapers address pods by IP: no Host/Origin policy for what a browser could
# not abuse anyway.
PROBE_PATHS = frozenset({"/health", "/health/ready", "/metrics"})

current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default=""
)


class BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True)
class StreamedBody:
    """A POST path whose body is streamed to the app (an upload), with its own limit."""

    max_bytes: int
    too_large: str = ""  # the 413's message; the default names the limit

    def message(self) -> str:
        return self.too_large or f"request body over {self.max_bytes} bytes"


def host_allowed(host: str | None, allowed: Iterable[str]) -> bool:
    if not host:
        return False
    host = host.lower()
    for pattern in allowed:
        pattern = pattern.lower()
        if pattern in ("*", host):
            return True
        if pattern.endswith(":*"):
            base = pattern[:-1]  # keeps the colon: "localhost:"
            if host.startswith(base) and host[len(base) :].isdigit():
                return True
    return False


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """A request without Origin is not from a browser page: nothing to rebind."""
    if origin is None:
        return True
    return host_allowed(origin, allowed)


_OWS = (32, 9)  # space, horizontal tab


def without_surrounding_whitespace(
    headers: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """Header values without leading/trailing whitespace (RFC 9110 §5.5: not part of the value).

    h11 strips it; httptools, the faster parser uvicorn prefers, passes it through, and the
    MCP SDK compares ``Mcp-Name`` / ``Mcp-Method`` with the body byte for byte.
    """
    for _, value in headers:
        if value and (value[0] in _OWS or value[-1] in _OWS):
            return [(name, value.strip(b" \t")) for name, value in headers]
    return headers


def _bearer(headers: Headers) -> str | None:
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return ""
    return credentials.strip()


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier,
        auditor: Auditor,
        allowed_hosts: list[str],
        allowed_origins: list[str],
        max_body_bytes: int,
        public_paths: frozenset[str] = PUBLIC_PATHS,
        streamed_bodies: dict[str, StreamedBody] | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.auditor = auditor
        self.allowed_hosts = allowed_hosts
        self.allowed_origins = allowed_origins
        self.max_body_bytes = max_body_bytes
        self.public_paths = public_paths
        # POST paths whose bodies are streamed to the app (uploads), each with its own limit.
        self.streamed_bodies = streamed_bodies or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["headers"] = without_surrounding_whitespace(scope["headers"])
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id")
        request_id = incoming if incoming and _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        current_request_id.set(request_id)
        started = {"response": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
                response_headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER
                ]
                response_headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": response_headers}
            await send(message)

        try:
            await self._guarded(scope, receive, send_with_id, headers, request_id)
        except Exception as error:
            log.exception("unhandled_error", request_id=request_id, error=type(error).__name__)
            if not started["response"]:
                await send_error(send_with_id, 500, "internal", "internal error", request_id)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, request_id: str
    ) -> None:
        if scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        if not host_allowed(headers.get("host"), self.allowed_hosts):
            await send_error(send, 421, "misdirected", "this Host is not served here", request_id)
            return
        if not origin_allowed(headers.get("origin"), self.allowed_origins):
            self.auditor.record(
                "origin.refused", AuditOutcome.DENIED, request_id=request_id, coalesce=True
            )
            await send_error(send, 403, "forbidden", "this Origin is not allowed", request_id)
            return
        if scope["path"] not in self.public_paths:
            principal = await self._authenticate(send, headers, request_id)
            if principal is None:
                return
            scope["state"]["principal"] = principal
            current_principal.set(principal)
        streamed = self.streamed_bodies.get(scope["path"]) if scope["method"] == "POST" else None
        limit = streamed or StreamedBody(self.max_body_bytes)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit.max_bytes:
            await self._too_large(send, request_id, limit)
            return
        if streamed is not None:
            await self._streamed(scope, receive, send, request_id, streamed)
            return
        try:
            body_receive = await self._buffer_body(receive, scope)
        except BodyTooLargeError:
            await self._too_large(send, request_id, limit)
            return
        await self.app(scope, body_receive, send)

    async def _streamed(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, limit: StreamedBody
    ) -> None:
        """The body reaches the app as it arrives (never buffered here), counted: past the
        limit the app's next read fails and the caller gets the same 413."""
        size = 0
        responded = False

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLargeError:
            if not responded:
                await self._too_large(send, request_id, limit)

    async def _too_large(self, send: Send, request_id: str, limit: StreamedBody) -> None:
        await send_error(
            send,
            413,
            "too_large",
            limit.message(),
            request_id,
            headers=[(b"connection", b"close")],
        )

    async def _authenticate(
        self, send: Send, headers: Headers, request_id: str
    ) -> Principal | None:
        presented = _bearer(headers)
        if not presented:
            reason = "missing" if presented is None else "malformed"
            self._audit_failure(reason, None, request_id)
            await send_error(
                send,
                401,
                "unauthorized",
                "an API key is required: Authorization: Bearer cctg_<id>_<secret>",
                request_id,
                headers=[(b"www-authenticate", b'Bearer realm="cctelegram"')],
            )
            return None
        try:
            result = await self.verifier.verify(presented, request_id)
        except AuthUnavailableError:
            log.warning("auth_unavailable", request_id=request_id)
            await send_error(
                send,
                503,
                "unavailable",
                "cannot check keys right now; try again shortly",
                request_id,
                retry_after_s=1.0,
                headers=[(b"retry-after", b"1")],
            )
            return None
        if result.valid and result.principal is not None:
            return result.principal
        parsed = parse_key(presented)
        self._audit_failure(
            result.reason or "invalid", parsed.key_id if parsed else None, request_id
        )
        await send_error(
            send,
            401,
            "unauthorized",
            "the API key is not valid (unknown, revoked or expired)",
            request_id,
            headers=[(b"www-authenticate", b'Bearer realm="cctelegram", error="invalid_token"')],
        )
        return None

    def _audit_failure(self, reason: str, key_id: str | None, request_id: str) -> None:
        metrics.count_authentication_failure(reason)
        self.auditor.record(
            "auth.failed",
            AuditOutcome.DENIED,
            key_id=key_id,
            request_id=request_id,
            reason=reason,
            coalesce=True,
        )

    async def _buffer_body(self, receive: Receive, scope: Scope) -> Receive:
        """Read the body (bounded) before the app sees it; replay it, then pass through.
        The bytes stay in the request state for routing that depends on them (/mcp)."""
        chunks: list[bytes] = []
        size = 0
        trailing: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                trailing = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLargeError
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope["state"]["body"] = body
        queue: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        if trailing is not None:
            queue.append(trailing)

        async def replay() -> Message:
            if queue:
                return queue.pop(0)
            return await receive()

        return replay
