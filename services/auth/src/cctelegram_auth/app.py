"""Composition root of the auth service: the key rules over the KV bucket, RPC handlers."""

from __future__ import annotations

from cctelegram_auth import handlers
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
from cctelegram_common.nats import jetstream
from cctelegram_common.redaction import register_secret
from cctelegram_common.service import Service

SERVICE_NAME = "auth"


def create_app(settings: AuthSettings | None = None) -> Service:
    """Raises ``SecretError`` when the server secret is missing or weak (outside dev mode)."""
    settings = settings or AuthSettings()
    secret = load_secret(settings)
    register_secret(secret.value.decode(errors="replace"))
    service = Service(SERVICE_NAME, settings)
    store = NatsKeyStore()

    async def notify(change: KeyChanged) -> None:
        # Core NATS broadcast: every gateway replica hears it (no queue group).
        await service.broker.publish(change, subjects.AUTH_KEY_CHANGED)

    async def audit(record: AuditRecord) -> bool:
        return await publish_audit(service.broker, record)

    keys = KeyService(
        store,
        secret.value,
        notify=notify,
        audit=audit,
        last_used_write_interval_s=settings.last_used_write_interval_s,
    )
    webhook_secrets = WebhookSecrets(keys, secret.value, audit)
    bootstrap_state = {"status": "not configured"}

    @service.on_connected
    async def open_bucket() -> None:
        if secret.ephemeral_reason is not None:
            service.log.warning(
                "ephemeral_auth_secret",
                reason=secret.ephemeral_reason,
                consequence="keys issued now stop working when this process stops",
            )
        store.attach(await jetstream(service.broker).key_value(subjects.KV_KEYS))
        webhook_secrets.kv = await jetstream(service.broker).key_value(subjects.KV_WEBHOOK_SECRETS)
        await bootstrap()

    async def bootstrap() -> None:
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
            "pass" if store.attached else "fail", f"bootstrap key: {bootstrap_state['status']}"
        )

    service.health.add("kv:keys", bucket_ready)

    @service.on_stop
    async def finish_writes() -> None:
        await keys.drain()

    handlers.register(service.broker, keys, webhook_secrets)
    return service
