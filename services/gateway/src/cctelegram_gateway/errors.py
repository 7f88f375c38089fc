"""The one error shape of every HTTP answer: {"error": {code, message, field?, request_id}}."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field
from starlette.types import Send


class ErrorDetail(BaseModel):
    code: str = Field(
        description="unauthorized, forbidden, not_found, invalid, too_large, rate_limited, "
        "misdirected, unavailable, conflict, internal"
    )
    message: str = Field(description="What went wrong, in words a caller can act on")
    field: str | None = Field(default=None, description="The offending argument, when one is")
    request_id: str = Field(description="Quote it when asking for help (also X-Request-Id)")
    retry_after_s: float | None = Field(default=None, description="When to try again")


class ErrorBody(BaseModel):
    """Every non-2xx answer of the gateway's own endpoints."""

    error: ErrorDetail


def error_bytes(
    code: str,
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
    code: str,
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
    400: {"model": ErrorBody, "description": "The request cannot be carried out as asked"},
    401: {"model": ErrorBody, "description": "Missing, malformed, unknown, revoked or expired key"},
    403: {"model": ErrorBody, "description": "The key's role lacks the needed permission"},
    404: {"model": ErrorBody, "description": "No such record (or not yours to see)"},
    409: {"model": ErrorBody, "description": "The record is in a state that forbids this"},
    413: {"model": ErrorBody, "description": "Request body over the limit"},
    422: {"model": ErrorBody, "description": "Invalid arguments (see error.field)"},
    429: {"model": ErrorBody, "description": "Rate limit hit (see Retry-After)"},
    503: {"model": ErrorBody, "description": "A dependency (auth, NATS) is unavailable"},
}
