"""The request-reply envelope every RPC answers with, and the closed set of refusal codes."""

from typing import Any, Literal, get_args

from pydantic import Field

from cctelegram_common.contracts.base import Contract

RefusalCode = Literal["invalid", "not_found", "forbidden", "conflict", "unavailable", "internal"]
"""Why an RPC refused, the same words the gateway answers callers with.

``invalid``: the request breaks a rule (``field`` names the argument); ``not_found``: no such
record, or not the caller's; ``forbidden``: the caller may not do this; ``conflict``: the
record's state forbids it; ``unavailable``: a dependency (or the service itself) is not ready;
``internal``: a bug, logged by the service. The gateway maps each to one HTTP status and one
MCP error (``cctelegram_gateway.errors.REFUSALS``)."""
REFUSAL_CODES: frozenset[str] = frozenset(get_args(RefusalCode))


class RpcError(Contract):
    """Why an RPC failed, in words a caller can show."""

    code: RefusalCode = Field(
        description="invalid, not_found, forbidden, conflict, unavailable, internal"
    )
    message: str
    field: str | None = None


class RpcReply(Contract):
    """``ok`` with a ``result`` (the method's own model, as JSON) or not ``ok`` with an error."""

    ok: bool
    result: dict[str, Any] | None = None
    error: RpcError | None = None
