"""Composition root of the gateway service: builds the broker, handlers and HTTP side."""

from cctelegram_common.service import Service
from cctelegram_gateway.settings import GatewaySettings

SERVICE_NAME = "gateway"


def create_app(settings: GatewaySettings | None = None) -> Service:
    settings = settings or GatewaySettings()
    service = Service(SERVICE_NAME, settings)
    return service
