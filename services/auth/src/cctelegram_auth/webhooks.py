"""Per-client webhook secrets: created (shown once) here, kept encrypted, used only here.

The sender of decision webhooks (the events service) never sees a secret: it asks
``sign_webhook`` for the signature of the exact body it is about to post. A secret has to be
usable for HMAC, so it cannot be stored as a digest like API keys; it is stored encrypted
under a key derived from auth's server secret (HMAC-SHA256 as a keystream with a random
nonce per secret, plus a MAC), in the ``cctg_webhook_secrets`` bucket only auth may read.
A leaked bucket without the server secret reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import nats.js.errors
from nats.js.kv import KeyValue

from cctelegram_auth.keys import KeyService
from cctelegram_common.contracts.audit import AuditOutcome, AuditRecord
from cctelegram_common.contracts.webhooks import (
    CreatedWebhookSecret,
    CreateWebhookSecretRequest,
    SignWebhookRequest,
    WebhookSignature,
)
from cctelegram_common.webhooks import sign

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
_SECRET_BYTES = 32


class NoWebhookSecretError(Exception):
    """The client has no webhook secret (yet)."""


def bucket_key(client_id: str) -> str:
    """Client ids may hold characters a KV key may not (``@``, ``:``): hash them."""
    return "c" + hashlib.sha256(client_id.encode()).hexdigest()[:40]


class SecretBox:
    """Encrypt-then-MAC of a 32-byte secret under keys derived from the server secret."""

    def __init__(self, server_secret: bytes) -> None:
        self._enc = hmac.new(server_secret, b"webhook-secret/enc", hashlib.sha256).digest()
        self._mac = hmac.new(server_secret, b"webhook-secret/mac", hashlib.sha256).digest()

    def _stream(self, client_id: str, nonce: bytes) -> bytes:
        return hmac.new(self._enc, nonce + client_id.encode(), hashlib.sha256).digest()

    def seal(self, client_id: str, plain: bytes) -> str:
        nonce = secrets.token_bytes(16)
        cipher = bytes(a ^ b for a, b in zip(plain, self._stream(client_id, nonce), strict=True))
        tag = hmac.new(self._mac, nonce + cipher + client_id.encode(), hashlib.sha256).digest()
        return base64.b64encode(nonce + cipher + tag).decode()

    def open(self, client_id: str, sealed: str) -> bytes:
        raw = base64.b64decode(sealed)
        nonce, cipher, tag = raw[:16], raw[16 : 16 + _SECRET_BYTES], raw[16 + _SECRET_BYTES :]
        expected = hmac.new(self._mac, nonce + cipher + client_id.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.digest(), tag):
            raise ValueError("webhook secret record fails its MAC (wrong server secret?)")
        return bytes(a ^ b for a, b in zip(cipher, self._stream(client_id, nonce), strict=True))


def encode_secret(plain: bytes) -> str:
    return SECRET_PREFIX + base64.urlsafe_b64encode(plain).decode().rstrip("=")


class WebhookSecrets:
    def __init__(
        self,
        keys: KeyService,
        server_secret: bytes,
        audit: Callable[[AuditRecord], Awaitable[object]],
        kv: KeyValue,
    ) -> None:
        self.keys = keys
        self.box = SecretBox(server_secret)
        self.audit = audit
        self.kv = kv

    async def create(self, request: CreateWebhookSecretRequest) -> CreatedWebhookSecret:
        record, _revision = await self.keys._get(request.key_id)
        plain = secrets.token_bytes(_SECRET_BYTES)
        now = datetime.now(UTC)
        value = {"sealed": self.box.seal(record.client_id, plain), "created_at": now.isoformat()}
        await self.kv.put(bucket_key(record.client_id), json.dumps(value).encode())
        await self.audit(
            AuditRecord(
                service="auth",
                action="webhook_secret.created",
                outcome=AuditOutcome.SUCCESS,
                client_id=request.actor,
                key_id=record.key_id,
                request_id=request.request_id,
                target=record.client_id,
            )
        )
        return CreatedWebhookSecret(
            client_id=record.client_id,
            key_id=record.key_id,
            webhook_secret=encode_secret(plain),
            created_at=now,
        )

    async def sign(self, request: SignWebhookRequest) -> WebhookSignature:
        try:
            entry = await self.kv.get(bucket_key(request.client_id))
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            raise NoWebhookSecretError(request.client_id) from None
        if not entry.value:
            raise NoWebhookSecretError(request.client_id)
        sealed = json.loads(entry.value)["sealed"]
        secret = encode_secret(self.box.open(request.client_id, sealed))
        return WebhookSignature(header=sign(secret, request.body.encode(), request.timestamp))
