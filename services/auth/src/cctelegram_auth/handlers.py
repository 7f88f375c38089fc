"""NATS adapters of the auth service: decode the RPC, call the key rules, reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker
from pydantic import BaseModel, ValidationError

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
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_common.contracts.webhooks import CreateWebhookSecretRequest, SignWebhookRequest
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import current_message, fail, ok

log = get_logger(__name__)
RequestT = TypeVar("RequestT", bound=BaseModel)


async def answer(
    raw: bytes, model: type[RequestT], method: Callable[[RequestT], Awaitable[BaseModel]]
) -> RpcReply:
    """Validate, call, and turn every failure into an ``RpcReply`` (never a silent drop)."""
    try:
        request = model.model_validate_json(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        return fail("invalid", first["msg"], field)
    try:
        return ok(await method(request))
    except KeyNotFoundError:
        return fail("not_found", "no key with this id", "key_id")
    except KeyStateError as error:
        return fail("conflict", str(error), "key_id")
    except NoWebhookSecretError:
        return fail("not_found", "this client has no webhook secret", "client_id")
    except Exception as error:
        log.exception("rpc_failed", method=model.__name__, error=type(error).__name__)
        return fail("internal", "the auth service could not complete this request")


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
