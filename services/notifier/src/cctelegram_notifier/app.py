"""Composition root of the notifier service: settings, runtime, control subscriber, health."""

from __future__ import annotations

from nats.js import JetStreamContext

from cctelegram_common import subjects
from cctelegram_common.messaging import Bindings
from cctelegram_common.redaction import register_secret
from cctelegram_common.service import Service
from cctelegram_notifier.contract import CONTRACT
from cctelegram_notifier.runtime import NotifierRuntime
from cctelegram_notifier.settings import NotifierSettings

SERVICE_NAME = CONTRACT.service


def create_app(settings: NotifierSettings | None = None) -> Service:
    return build_notifier(settings or NotifierSettings())[0]


def build_notifier(settings: NotifierSettings) -> tuple[Service, NotifierRuntime]:
    """The service and its runtime (tests and the bench drive the runtime directly)."""
    # Before anything can log: the token sits in every Bot API URL.
    for secret in (
        settings.bot_token,
        settings.webhook.secret_token,
        *settings.bot_tokens.values(),
        *settings.all_bots().values(),
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    service = Service(SERVICE_NAME, settings, CONTRACT)
    runtime = NotifierRuntime(settings)
    service.health.add("telegram:token", runtime.check_token)
    service.health.add("telegram:api", runtime.check_api)
    service.health.add("telegram:updates", runtime.check_conflict)

    async def connect(js: JetStreamContext) -> Bindings:
        await runtime.start(js)
        return Bindings(
            # Every replica obeys every broadcast.
            listeners={subjects.BRIDGE_CONTROL: runtime.apply},
        )

    service.connect_with(connect)

    # While NATS is still up: finish in-flight sends, nak the rest, release the lease.
    service.on_stopping(runtime.stop)
    return service, runtime
