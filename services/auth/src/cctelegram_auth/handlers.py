"""NATS adapters of the auth service: decode the RPC, call the key rules, reply."""

from __future__ import annotations

from typing import Any

from faststream.nats import NatsBroker
from pydantic import BaseModel

from cctelegram_auth.keys import KeyNotFoundError, KeyService, KeyStateError
from cctelegram_auth.webhooks import NoWebhookSecretError, WebhookSecrets
from cctelegram_common import subjects
from cctelegram_common.contracts.auth import (
    CreateKeyRequest,
    ListKeysRequest,
    RevokeKeyRequest,
    RotateKeyRequest,
    VerifyRequest,
)
from cctelegram_common.contracts.rpc import RpcError, RpcReply
from cctelegram_common.contracts.webhooks import CreateWebhookSecretRequest, SignWebhookRequest
from cctelegram_common.nats import RpcResponder, current_message


def _refusal(error: Exception) -> RpcError | None:
    if isinstance(error, KeyNotFoundError):
        return RpcError(code="not_found", message="no key with this id", field="key_id")
    if isinstance(error, KeyStateError):
        return RpcError(code="conflict", message=str(error), field="key_id")
    if isinstance(error, NoWebhookSecretError):
        return RpcError(
            code="not_found", message="this client has no webhook secret", field="client_id"
        )
    return None


# Validate, call, and turn every failure into an ``RpcReply`` (never a silent drop).
answer = RpcResponder(
    refusal=_refusal, internal_message="the auth service could not complete this request"
).request


def register(broker: NatsBroker, keys: KeyService, webhooks: WebhookSecrets) -> None:
    """One subscriber per RPC, all in the ``auth`` queue group (any replica answers)."""
    queue = subjects.AUTH_RPC_SERVICE

    @broker.subscriber(subjects.AUTH_RPC_VERIFY, queue=queue)
    async def verify(_body: Any) -> RpcReply:
        message = current_message(broker)

        async def run(request: VerifyRequest) -> BaseModel:
            return await keys.verify(request.api_key)

        return await answer(message.body, VerifyRequest, run)

    @broker.subscriber(subjects.AUTH_RPC_CREATE_KEY, queue=queue)
    async def create_key(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, CreateKeyRequest, keys.create)

    @broker.subscriber(subjects.AUTH_RPC_LIST_KEYS, queue=queue)
    async def list_keys(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, ListKeysRequest, keys.list)

    @broker.subscriber(subjects.AUTH_RPC_REVOKE_KEY, queue=queue)
    async def revoke_key(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, RevokeKeyRequest, keys.revoke)

    @broker.subscriber(subjects.AUTH_RPC_ROTATE_KEY, queue=queue)
    async def rotate_key(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, RotateKeyRequest, keys.rotate)

    @broker.subscriber(subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET, queue=queue)
    async def create_webhook_secret(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, CreateWebhookSecretRequest, webhooks.create)

    @broker.subscriber(subjects.AUTH_RPC_SIGN_WEBHOOK, queue=queue)
    async def sign_webhook(_body: Any) -> RpcReply:
        message = current_message(broker)
        return await answer(message.body, SignWebhookRequest, webhooks.sign)
