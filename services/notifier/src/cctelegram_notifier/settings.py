"""Settings of the notifier service (environment prefix `NOTIFIER_`)."""

from pydantic import Field

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class NotifierSettings(ServiceSettings):
    model_config = service_config("NOTIFIER_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8093))
