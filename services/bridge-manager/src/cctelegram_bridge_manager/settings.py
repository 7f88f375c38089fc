"""Settings of the bridge-manager service (environment prefix `BRIDGE_MANAGER_`)."""

from pydantic import Field

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class BridgeManagerSettings(ServiceSettings):
    model_config = service_config("BRIDGE_MANAGER_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8094))
