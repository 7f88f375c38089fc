"""Settings of the gateway service (environment prefix `GATEWAY_`)."""

from pydantic import Field

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class GatewaySettings(ServiceSettings):
    model_config = service_config("GATEWAY_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8080))
