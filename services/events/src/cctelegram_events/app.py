"""Composition root of the events service: builds the broker, handlers and HTTP side."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.health import CheckResult
from cctelegram_common.nats import jetstream
from cctelegram_common.service import Service
from cctelegram_events import handlers
from cctelegram_events.modes import ModeStore, QuietHours
from cctelegram_events.notifications import NotificationService
from cctelegram_events.ports import BrokerPublisher, NatsKv, system_clock
from cctelegram_events.runtime import Runtime, RuntimeHolder
from cctelegram_events.settings import EventsSettings

SERVICE_NAME = "events"


def quiet_hours_of(settings: EventsSettings) -> QuietHours | None:
    if settings.quiet_hours_start is None or settings.quiet_hours_end is None:
        return None
    return QuietHours(settings.quiet_hours_start, settings.quiet_hours_end, settings.timezone)


def create_app(settings: EventsSettings | None = None) -> Service:
    settings = settings or EventsSettings()
    service = Service(SERVICE_NAME, settings)
    holder = RuntimeHolder()
    handlers.register(service.broker, holder)

    @service.on_connected
    async def build_runtime() -> None:
        js = jetstream(service.broker)
        status_kv = NatsKv(await js.key_value(subjects.KV_EVENT_STATUS))
        state_kv = NatsKv(await js.key_value(subjects.KV_STATE))
        publisher = BrokerPublisher(service.broker)
        modes = ModeStore(state_kv, system_clock)
        notifications = NotificationService(
            status_kv=status_kv,
            state_kv=state_kv,
            publisher=publisher,
            modes=modes,
            clock=system_clock,
            allowed_users=settings.allowed_users,
            style=settings.style,
            live_task_cards=settings.live_task_cards,
            quiet_hours=quiet_hours_of(settings),
        )
        holder.set(Runtime(notifications=notifications, modes=modes))

    async def runtime_ready() -> CheckResult:
        if holder.ready:
            return CheckResult("pass")
        return CheckResult("fail", "domain services not built yet")

    async def allowed_users_configured() -> CheckResult:
        if settings.allowed_users:
            return CheckResult("pass", observed_value=len(settings.allowed_users))
        return CheckResult("warn", "TELEGRAM_ALLOWED_USERS is empty: nobody receives anything")

    service.health.add("events:runtime", runtime_ready)
    service.health.add("events:allowed_users", allowed_users_configured)
    return service
