"""Composition root of the auth service: builds the broker, handlers and HTTP side."""

from cctelegram_auth.settings import AuthSettings
from cctelegram_common.service import Service

SERVICE_NAME = "auth"


def create_app(settings: AuthSettings | None = None) -> Service:
    settings = settings or AuthSettings()
    service = Service(SERVICE_NAME, settings)
    return service
