"""Settings of the events service (environment prefix `EVENTS_`)."""

from pydantic import Field

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class EventsSettings(ServiceSettings):
    model_config = service_config("EVENTS_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8092))
