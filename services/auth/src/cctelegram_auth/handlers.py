"""NATS adapters of the auth service: decode the RPC, call the key rules, reply."""

from __future__ import annotations

from pydantic import BaseModel

from cctelegram_auth.keys import KeyNotFoundError, KeyService, KeyStateError
from cctelegram_auth.webhooks import NoWebhookSecretError, WebhookSecrets
from cctelegram_common import subjects
from cctelegram_common.contracts.auth import VerifyRequest
from cctelegram_common.contracts.rpc import RpcError
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import RpcResponder


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


def bindings(keys: KeyService, webhooks: WebhookSecrets) -> Bindings:
    """The auth contract's RPCs served by the key rules and the webhook secrets."""

    async def verify(request: VerifyRequest) -> BaseModel:
        return await keys.verify(request.api_key)

    return Bindings(
        responder=RpcResponder(
            refusal=_refusal, internal_message="the auth service could not complete this request"
        ),
        rpcs={
            subjects.AUTH_RPC_VERIFY: verify,
            subjects.AUTH_RPC_CREATE_KEY: keys.create,
            subjects.AUTH_RPC_LIST_KEYS: keys.list,
            subjects.AUTH_RPC_REVOKE_KEY: keys.revoke,
            subjects.AUTH_RPC_ROTATE_KEY: keys.rotate,
            subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET: webhooks.create,
            subjects.AUTH_RPC_SIGN_WEBHOOK: webhooks.sign,
        },
    )
