"""What the auth service does on NATS: the one declaration its subscriptions and the
AsyncAPI document are made from (see ``cctelegram_common.messaging``)."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.audit import AUDIT_TRAIL
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyChanged,
    KeyInfo,
    KeyList,
    ListKeysRequest,
    RevokeKeyRequest,
    RotatedKey,
    RotateKeyRequest,
    VerifyRequest,
    VerifyResponse,
)
from cctelegram_common.contracts.webhooks import (
    CreatedWebhookSecret,
    CreateWebhookSecretRequest,
    SignWebhookRequest,
    WebhookSignature,
)
from cctelegram_common.messaging import Publish, Rpc, ServiceContract

KEY_MANAGERS = ("gateway", "cctelegram keys")

CONTRACT = ServiceContract(
    service="auth",
    rpc_queue=subjects.AUTH_RPC_SERVICE,
    rpcs=(
        Rpc(
            subjects.AUTH_RPC_VERIFY,
            VerifyRequest,
            VerifyResponse,
            ("gateway",),
            "Is this presented API key valid, and whose is it?",
        ),
        Rpc(
            subjects.AUTH_RPC_CREATE_KEY,
            CreateKeyRequest,
            CreatedKey,
            KEY_MANAGERS,
            "Create a key; the full key is in the reply once and never again.",
        ),
        Rpc(
            subjects.AUTH_RPC_LIST_KEYS,
            ListKeysRequest,
            KeyList,
            KEY_MANAGERS,
            "List keys (ids, clients, roles, expiry, last use; never secrets).",
        ),
        Rpc(
            subjects.AUTH_RPC_REVOKE_KEY,
            RevokeKeyRequest,
            KeyInfo,
            KEY_MANAGERS,
            "Revoke a key; KeyChanged follows so every gateway forgets it within a second.",
        ),
        Rpc(
            subjects.AUTH_RPC_ROTATE_KEY,
            RotateKeyRequest,
            RotatedKey,
            KEY_MANAGERS,
            "Issue a new key for the same client; the old one stays valid until revoked.",
        ),
        Rpc(
            subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET,
            CreateWebhookSecretRequest,
            CreatedWebhookSecret,
            KEY_MANAGERS,
            "Create the webhook signing secret of a key's client; shown once, kept encrypted.",
        ),
        Rpc(
            subjects.AUTH_RPC_SIGN_WEBHOOK,
            SignWebhookRequest,
            WebhookSignature,
            ("events",),
            "Sign a decision webhook's body with the client's secret (it never leaves auth).",
        ),
    ),
    publishes=(
        AUDIT_TRAIL,
        Publish(
            subjects.AUTH_KEY_CHANGED,
            KeyChanged,
            "broadcast",
            "A key was revoked or changed: every gateway drops it from its cache.",
        ),
    ),
)
