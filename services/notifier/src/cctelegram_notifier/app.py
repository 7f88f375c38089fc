"""Composition root of the notifier service: builds the broker, handlers and HTTP side."""

from cctelegram_common.service import Service
from cctelegram_notifier.settings import NotifierSettings

SERVICE_NAME = "notifier"


def create_app(settings: NotifierSettings | None = None) -> Service:
    settings = settings or NotifierSettings()
    service = Service(SERVICE_NAME, settings)
    return service
