"""Composition root of the auth service: the key rules over the KV bucket, RPC handlers."""

from __future__ import annotations

from nats.js import JetStreamContext

from cctelegram_auth import handlers
from cctelegram_auth.contract import CONTRACT
from cctelegram_auth.keys import KeyService
from cctelegram_auth.secret import load_secret
from cctelegram_auth.settings import AuthSettings
from cctelegram_auth.store import NatsKeyStore
from cctelegram_auth.webhooks import WebhookSecrets
from cctelegram_common import subjects
from cctelegram_common.audit import publish_audit
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.contracts.auth import KeyChanged
from cctelegram_common.health import CheckResult
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import broadcast
from cctelegram_common.redaction import register_secret
from cctelegram_common.service import Service

SERVICE_NAME = CONTRACT.service


def create_app(settings: AuthSettings | None = None) -> Service:
    """Raises ``SecretError`` when the server secret is missing or weak (outside dev mode)."""
    settings = settings or AuthSettings()
    secret = load_secret(settings)
    register_secret(secret.value.decode(errors="replace"))
    service = Service(SERVICE_NAME, settings, CONTRACT)
    bootstrap_state = {"status": "not configured"}
    built: list[KeyService] = []

    async def notify(change: KeyChanged) -> None:
        await broadcast(service.broker, subjects.AUTH_KEY_CHANGED, change)

    async def audit(record: AuditRecord) -> bool:
        return await publish_audit(service.broker, record)

    async def connect(js: JetStreamContext) -> Bindings:
        if secret.ephemeral_reason is not None:
            service.log.warning(
                "ephemeral_auth_secret",
                reason=secret.ephemeral_reason,
                consequence="keys issued now stop working when this process stops",
            )
        keys = KeyService(
            NatsKeyStore(await js.key_value(subjects.KV_KEYS)),
            secret.value,
            notify=notify,
            audit=audit,
            last_used_write_interval_s=settings.last_used_write_interval_s,
        )
        built.append(keys)
        webhook_secrets = WebhookSecrets(
            keys, secret.value, audit, await js.key_value(subjects.KV_WEBHOOK_SECRETS)
        )
        await bootstrap(keys)
        return handlers.bindings(keys, webhook_secrets)

    service.connect_with(connect)

    async def bootstrap(keys: KeyService) -> None:
        path = settings.bootstrap_key_file
        if path is None or not path.exists():
            return
        presented = path.read_text().strip()
        register_secret(presented)
        try:
            bootstrap_state["status"] = await keys.ensure_bootstrap(presented)
        except ValueError as error:
            bootstrap_state["status"] = "invalid file"
            service.log.error("bootstrap_key_invalid", file=str(path), error=str(error))
            return
        service.log.info("bootstrap_key", outcome=bootstrap_state["status"])

    async def bucket_ready() -> CheckResult:
        return CheckResult(
            "pass" if service.ready else "fail", f"bootstrap key: {bootstrap_state['status']}"
        )

    service.health.add("kv:keys", bucket_ready)

    @service.on_stop
    async def finish_writes() -> None:
        for keys in built:
            await keys.drain()

    return service
