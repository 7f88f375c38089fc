"""Composition root of the bridge-manager service: builds the broker, handlers and HTTP side."""

from cctelegram_bridge_manager.settings import BridgeManagerSettings
from cctelegram_common.service import Service

SERVICE_NAME = "bridge-manager"


def create_app(settings: BridgeManagerSettings | None = None) -> Service:
    settings = settings or BridgeManagerSettings()
    service = Service(SERVICE_NAME, settings)
    return service
