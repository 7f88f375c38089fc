"""The request-reply envelope every RPC answers with."""

from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract


class RpcError(Contract):
    """Why an RPC failed, in words a caller can show."""

    code: str = Field(description="not_found, forbidden, invalid, conflict, unavailable, internal")
    message: str
    field: str | None = None


class RpcReply(Contract):
    """``ok`` with a ``result`` (the method's own model, as JSON) or not ``ok`` with an error."""

    ok: bool
    result: dict[str, Any] | None = None
    error: RpcError | None = None
