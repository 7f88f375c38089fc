"""Settings of the bridge-manager service (environment prefix `BRIDGE_MANAGER_`)."""

from pydantic import AliasChoices, BaseModel, Field, SecretStr

from cctelegram_common.settings import HttpSettings, ServiceSettings, service_config


class HealthThresholds(BaseModel):
    """When the fleet's health turns warn or fail. Env: ``BRIDGE_MANAGER_HEALTH__<NAME>``."""

    heartbeat_ttl_s: float = Field(
        default=15.0, gt=0, description="A heartbeat older than this is a dead instance"
    )
    oldest_warn_s: float = Field(default=60.0, gt=0, description="Oldest waiting message: warn")
    oldest_fail_s: float = Field(default=600.0, gt=0, description="Oldest waiting message: fail")
    growing_samples: int = Field(
        default=5, ge=2, description="Consecutive depth samples that must rise for 'growing'"
    )


class SupervisorSettings(BaseModel):
    """Supervised mode: the notifier processes bridge-manager owns.

    Env: ``BRIDGE_MANAGER_SUPERVISOR__<NAME>``; switched on by ``BRIDGE_MANAGER_SUPERVISE``.
    """

    notifiers: int = Field(default=1, ge=1, le=16, description="How many notifier processes")
    base_port: int = Field(
        default=8093,
        ge=1,
        le=65535,
        description="HTTP port of notifier 0; notifier i listens on base_port + i",
    )
    module: str = Field(default="cctelegram_notifier", description="What `python -m` runs")
    instance_prefix: str = Field(
        default="notifier", description="Instance ids are <prefix>-<index>-<start number>"
    )
    autorestart: bool = Field(default=True, description="Restart a crashed notifier")
    restart_base_s: float = Field(default=0.5, gt=0, description="First restart backoff")
    restart_cap_s: float = Field(default=30.0, gt=0, description="Longest restart backoff")
    stable_after_s: float = Field(
        default=30.0, gt=0, description="A process up this long resets its backoff"
    )
    stop_grace_s: float = Field(
        default=15.0, gt=0, description="SIGTERM, then SIGKILL after this long"
    )
    ready_timeout_s: float = Field(
        default=20.0, gt=0, description="How long a start waits for /health/ready"
    )


class BridgeManagerSettings(ServiceSettings):
    model_config = service_config("BRIDGE_MANAGER_")

    http: HttpSettings = Field(default_factory=lambda: HttpSettings(port=8094))
    supervise: bool = Field(
        default=False, description="Own the notifier processes (what `cctelegram up` uses)"
    )
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    health: HealthThresholds = Field(default_factory=HealthThresholds)
    sample_interval_s: float = Field(
        default=2.0, gt=0, description="How often the fleet is sampled (metrics, growth)"
    )
    # Unprefixed, like the notifier's: the same bot this fleet delivers for.
    telegram_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("telegram_bot_token", "TELEGRAM_BOT_TOKEN"),
        description="Enables bridge-manager's own periodic getMe (never logged)",
    )
    telegram_api_base_url: str = Field(
        default="https://api.telegram.org",
        validation_alias=AliasChoices("telegram_api_base_url", "TELEGRAM_API_BASE_URL"),
    )
    telegram_check_interval_s: float = Field(default=30.0, gt=0, description="getMe period")
    telegram_timeout_s: float = Field(default=10.0, gt=0)
