"""Settings of the auth service (environment prefix `AUTH_`)."""

from pydantic import Field

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class AuthSettings(ServiceSettings):
    model_config = service_config("AUTH_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8091))
