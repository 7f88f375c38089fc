"""Key management tools (admin keys only): create, list, revoke, rotate — RPCs to auth.

Also served as REST at ``/v1/keys`` (GET lists, POST creates) and ``/v1/keys/revoke``,
``/v1/keys/rotate``. A created or rotated key's secret is in the answer once and nowhere else.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, Field

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyInfo,
    KeyList,
    ListKeysRequest,
    Permission,
    RevokeKeyRequest,
    Role,
    RotatedKey,
    RotateKeyRequest,
)
from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.webhooks import CreatedWebhookSecret, CreateWebhookSecretRequest
from cctelegram_common.nats import RpcFailedError, rpc_call
from cctelegram_gateway.registry import ToolContext, ToolError, registry

ResultT = TypeVar("ResultT", bound=BaseModel)
_KEY_ID = Field(pattern=r"^[A-Za-z0-9]{12}$", description="The key's id (cctg_<key id>_...)")


class CreateKeyInput(Contract):
    client_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$",
        description="Who the key is for (letters, digits, ._@:-)",
    )
    role: Role = Field(default=Role.AGENT, description="admin, operator, agent or reader")
    label: str = Field(default="", max_length=200, description="What the key is for")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Calls per minute; none = role default"
    )
    expires_in_s: int | None = Field(
        default=None, ge=60, le=10 * 365 * 86400, description="Lifetime in seconds"
    )


class ListKeysInput(Contract):
    client_id: str | None = Field(default=None, max_length=100, description="Only this client")
    include_inactive: bool = Field(default=False, description="Also revoked and expired keys")


class RevokeKeyInput(Contract):
    key_id: str = _KEY_ID


class RotateKeyInput(Contract):
    key_id: str = _KEY_ID
    old_key_valid_for_s: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Grace period of the old key (0 = none)"
    )


async def _ask(
    ctx: ToolContext, subject: str, request: BaseModel, result: type[ResultT]
) -> ResultT:
    try:
        return await rpc_call(ctx.broker, subject, request, result, timeout_s=5.0)
    except RpcFailedError as failed:
        raise ToolError.from_rpc(failed.error) from None


@registry.tool(
    "create_api_key",
    description="Issue an API key for a client and role. The full key is in this answer only.",
    permission=Permission.KEYS_MANAGE,
    rest_path="/v1/keys",
)
async def create_api_key(ctx: ToolContext, arguments: CreateKeyInput) -> CreatedKey:
    request = CreateKeyRequest(
        **arguments.model_dump(), actor=ctx.principal.client_id, request_id=ctx.request_id
    )
    return await _ask(ctx, subjects.AUTH_RPC_CREATE_KEY, request, CreatedKey)


@registry.tool(
    "list_api_keys",
    description="List API keys (never their secrets): client, role, limits, expiry, last use.",
    permission=Permission.KEYS_MANAGE,
    rest_method="GET",
    rest_path="/v1/keys",
    read_only=True,
)
async def list_api_keys(ctx: ToolContext, arguments: ListKeysInput) -> KeyList:
    request = ListKeysRequest(**arguments.model_dump())
    return await _ask(ctx, subjects.AUTH_RPC_LIST_KEYS, request, KeyList)


@registry.tool(
    "revoke_api_key",
    description="Revoke an API key; every gateway refuses it within a second.",
    permission=Permission.KEYS_MANAGE,
    rest_path="/v1/keys/revoke",
)
async def revoke_api_key(ctx: ToolContext, arguments: RevokeKeyInput) -> KeyInfo:
    request = RevokeKeyRequest(
        key_id=arguments.key_id, actor=ctx.principal.client_id, request_id=ctx.request_id
    )
    return await _ask(ctx, subjects.AUTH_RPC_REVOKE_KEY, request, KeyInfo)


@registry.tool(
    "rotate_api_key",
    description="Replace an API key: a new key for the same client and role; the old one "
    "keeps working for the grace period. The new full key is in this answer only.",
    permission=Permission.KEYS_MANAGE,
    rest_path="/v1/keys/rotate",
)
async def rotate_api_key(ctx: ToolContext, arguments: RotateKeyInput) -> RotatedKey:
    request = RotateKeyRequest(
        key_id=arguments.key_id,
        old_key_valid_for_s=arguments.old_key_valid_for_s,
        actor=ctx.principal.client_id,
        request_id=ctx.request_id,
    )
    return await _ask(ctx, subjects.AUTH_RPC_ROTATE_KEY, request, RotatedKey)


class WebhookSecretInput(Contract):
    key_id: str = _KEY_ID


@registry.tool(
    "create_webhook_secret",
    description="Create the webhook signing secret of a key's client (decision webhooks are "
    "signed with it). Shown in this answer only; a new one replaces the old at once.",
    permission=Permission.KEYS_MANAGE,
)
async def create_webhook_secret(
    ctx: ToolContext, arguments: WebhookSecretInput
) -> CreatedWebhookSecret:
    request = CreateWebhookSecretRequest(
        key_id=arguments.key_id, actor=ctx.principal.client_id, request_id=ctx.request_id
    )
    return await _ask(ctx, subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET, request, CreatedWebhookSecret)
