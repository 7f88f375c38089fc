"""The gateway's one error vocabulary: the codes, the table that gives each its HTTP status and
MCP error, the one caller-facing exception (``ToolError``), and the one error shape of every
HTTP answer: {"error": {code, message, field?, request_id}}."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST
from pydantic import BaseModel, Field
from starlette.types import Send

from cctelegram_common.contracts.rpc import RefusalCode, RpcError

# The RPC refusal codes (``RefusalCode``, the services' own) plus the ones only the front door
# gives (authentication, rate limit, body size, Host check, HTTP method).
FrontDoorCode = Literal[
    "unauthorized", "rate_limited", "too_large", "misdirected", "method_not_allowed"
]
ErrorCode = RefusalCode | FrontDoorCode


@dataclass(frozen=True)
class Refusal:
    """How one error code reaches a caller."""

    status: int
    """The HTTP status of a REST answer (and of the front door's own refusals)."""
    mcp_error: int
    """The JSON-RPC error code where MCP answers with an error (``resources/read``); a refused
    ``tools/call`` is a result with ``isError`` and the message, as the MCP spec asks."""


# THE table. ``invalid`` is 422 everywhere: the OpenAPI document's "Invalid arguments (see
# error.field)" and what schema validation has always answered; a tool's own argument rule
# (e.g. two equal approval options) is the same kind of refusal, so it answers the same.
REFUSALS: dict[ErrorCode, Refusal] = {
    "invalid": Refusal(422, INVALID_PARAMS),
    "not_found": Refusal(404, INVALID_PARAMS),
    "forbidden": Refusal(403, INVALID_PARAMS),
    "conflict": Refusal(409, INVALID_PARAMS),
    "unavailable": Refusal(503, INTERNAL_ERROR),
    "internal": Refusal(500, INTERNAL_ERROR),
    "unauthorized": Refusal(401, INVALID_REQUEST),
    "rate_limited": Refusal(429, INVALID_REQUEST),
    "too_large": Refusal(413, INVALID_REQUEST),
    "misdirected": Refusal(421, INVALID_REQUEST),
    "method_not_allowed": Refusal(405, INVALID_REQUEST),
}
# Starlette's own HTTP errors carry only a status: the code each status stands for.
CODE_OF_STATUS: dict[int, ErrorCode] = {
    refusal.status: code for code, refusal in REFUSALS.items() if code != "internal"
}
CODE_OF_STATUS[400] = "invalid"


class ToolError(Exception):
    """The one caller-facing refusal: MCP ``isError`` / a REST error answer with this message.

    Raised by tool handlers, the permission check, the rate limiter and argument validation
    alike. ``status`` follows ``code`` through ``REFUSALS``; pass it only to override the
    table (no caller in this repository does).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: ErrorCode = "invalid",
        field: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code: ErrorCode = code
        self.status = status if status is not None else REFUSALS[code].status
        self.field = field
        self.retry_after_s = retry_after_s

    @property
    def mcp_error(self) -> int:
        return REFUSALS[self.code].mcp_error

    @classmethod
    def from_rpc(
        cls, error: RpcError, *, message: str | None = None, field: str | None = None
    ) -> ToolError:
        """A service's RPC refusal as the caller sees it (``field`` when the reply names none)."""
        return cls(message or error.message, code=error.code, field=error.field or field)


class ErrorDetail(BaseModel):
    code: ErrorCode = Field(
        description="invalid, not_found, forbidden, conflict, unavailable, internal, "
        "unauthorized, rate_limited, too_large, misdirected, method_not_allowed"
    )
    message: str = Field(description="What went wrong, in words a caller can act on")
    field: str | None = Field(default=None, description="The offending argument, when one is")
    request_id: str = Field(description="Quote it when asking for help (also X-Request-Id)")
    retry_after_s: float | None = Field(default=None, description="When to try again")


class ErrorBody(BaseModel):
    """Every non-2xx answer of the gateway's own endpoints."""

    error: ErrorDetail


def error_bytes(
    code: ErrorCode,
    message: str,
    request_id: str,
    field: str | None = None,
    retry_after_s: float | None = None,
) -> bytes:
    detail: dict[str, object] = {"code": code, "message": message, "request_id": request_id}
    if field is not None:
        detail["field"] = field
    if retry_after_s is not None:
        detail["retry_after_s"] = retry_after_s
    return json.dumps({"error": detail}, separators=(",", ":")).encode()


async def send_error(
    send: Send,
    status: int,
    code: ErrorCode,
    message: str,
    request_id: str,
    *,
    field: str | None = None,
    retry_after_s: float | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Write a whole error response on a raw ASGI ``send``."""
    body = error_bytes(code, message, request_id, field, retry_after_s)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Documented once for the OpenAPI document: what each status means at this gateway.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Malformed request (code invalid)"},
    401: {"model": ErrorBody, "description": "Missing, malformed, unknown, revoked or expired key"},
    403: {"model": ErrorBody, "description": "The key's role lacks the needed permission"},
    404: {"model": ErrorBody, "description": "No such record (or not yours to see)"},
    409: {"model": ErrorBody, "description": "The record is in a state that forbids this"},
    413: {"model": ErrorBody, "description": "Request body over the limit"},
    422: {"model": ErrorBody, "description": "Invalid arguments (see error.field)"},
    429: {"model": ErrorBody, "description": "Rate limit hit (see Retry-After)"},
    503: {"model": ErrorBody, "description": "A dependency (auth, NATS) is unavailable"},
}
