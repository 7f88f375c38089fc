"""Composition root of the events service: builds the broker, handlers and HTTP side."""

from cctelegram_common.service import Service
from cctelegram_events.settings import EventsSettings

SERVICE_NAME = "events"


def create_app(settings: EventsSettings | None = None) -> Service:
    settings = settings or EventsSettings()
    service = Service(SERVICE_NAME, settings)
    return service
