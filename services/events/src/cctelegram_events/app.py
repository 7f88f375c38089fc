"""Composition root of the events service: builds the broker, handlers and HTTP side."""

from __future__ import annotations

import asyncio
import contextlib
import functools

import httpx
from nats.js import JetStreamContext

from cctelegram_common import files, subjects
from cctelegram_common.health import CheckResult
from cctelegram_common.logging import get_logger
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import JetStreamPublisher, jetstream
from cctelegram_common.routes_file import load_routes_file
from cctelegram_common.service import Service
from cctelegram_common.streams import DAY_S
from cctelegram_common.webhooks import AllowList
from cctelegram_events import handlers
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.bridge_client import RpcBridgeClient
from cctelegram_events.callbacks import CallbackSigner, shared_secret
from cctelegram_events.contract import CONTRACT
from cctelegram_events.modes import ModeService, ModeStore, QuietHours
from cctelegram_events.notifications import NotificationService
from cctelegram_events.ports import NatsDueIndex, NatsKv, system_clock
from cctelegram_events.responses import ResponseLog, StreamResponseReader
from cctelegram_events.routing import RouteBook
from cctelegram_events.runtime import Runtime
from cctelegram_events.sessions import SessionService
from cctelegram_events.settings import EventsSettings
from cctelegram_events.tasks import TaskService
from cctelegram_events.updates import UpdateInterpreter
from cctelegram_events.webhooks import WebhookSender, auth_signer

SERVICE_NAME = CONTRACT.service
log = get_logger(__name__)


def quiet_hours_of(settings: EventsSettings) -> QuietHours | None:
    if settings.quiet_hours_start is None or settings.quiet_hours_end is None:
        return None
    return QuietHours(settings.quiet_hours_start, settings.quiet_hours_end, settings.timezone)


async def build_runtime(service: Service, settings: EventsSettings) -> Runtime:
    """Open the KV buckets and assemble the domain services over them."""
    js = jetstream(service.broker)
    status_kv = NatsKv(await js.key_value(subjects.KV_EVENT_STATUS))
    state_kv = NatsKv(await js.key_value(subjects.KV_STATE))
    approvals_kv = NatsKv(await js.key_value(subjects.KV_APPROVALS))
    sessions_kv = NatsKv(await js.key_value(subjects.KV_SESSIONS))
    seen_kv = NatsKv(await js.key_value(subjects.KV_UPDATES_SEEN))
    routes = RouteBook(NatsKv(await js.key_value(subjects.KV_ROUTES)), settings.routes_refresh_s)
    routes_file = load_routes_file(settings.routes_file) if settings.routes_file else None
    if routes_file is not None and routes_file.routes:
        seeded = await routes.seed(routes_file.routes)
        log.info("routes_seeded", count=seeded)
    publisher = JetStreamPublisher(js)
    clock = system_clock
    modes = ModeStore(state_kv, clock)
    mode_service = ModeService(modes, publisher, clock, settings.timezone, quiet_hours_of(settings))
    signer = CallbackSigner(await shared_secret(state_kv, settings.resolved_callback_secret()))
    responses = ResponseLog(publisher, StreamResponseReader(js), state_kv, clock)
    notifications = NotificationService(
        status_kv=status_kv,
        state_kv=state_kv,
        publisher=publisher,
        modes=modes,
        clock=clock,
        allowed_users=settings.allowed_users,
        style=settings.style,
        live_task_cards=settings.live_task_cards,
        quiet_hours=quiet_hours_of(settings),
        routes=routes,
        history_s=settings.nats.history_days * DAY_S,
    )
    approvals = ApprovalService(
        approvals_kv=approvals_kv,
        status_kv=status_kv,
        state_kv=state_kv,
        publisher=publisher,
        signer=signer,
        responses=responses,
        clock=clock,
        allowed_users=settings.allowed_users,
        timezone=settings.timezone,
        routes=routes,
        due_index=NatsDueIndex(js),
        history_s=settings.nats.history_days * DAY_S,
    )
    tasks = TaskService(
        state_kv, clock, settings.task_root_allowlist, settings.nats.history_days * DAY_S
    )
    sessions = SessionService(sessions_kv, approvals_kv, clock)
    updates = UpdateInterpreter(
        approvals=approvals,
        responses=responses,
        tasks=tasks,
        modes=mode_service,
        bridge=RpcBridgeClient(service.broker),
        seen_kv=seen_kv,
        publisher=publisher,
        clock=clock,
        allowed_users=settings.allowed_users,
        sessions=sessions,
        assign_file_owner=functools.partial(files.assign_owner, js),
    )
    return Runtime(
        notifications=notifications,
        modes=mode_service,
        approvals=approvals,
        responses=responses,
        tasks=tasks,
        updates=updates,
        sessions=sessions,
        routes=routes,
    )


async def housekeeping(runtime: Runtime, interval_s: float, stopping: asyncio.Event) -> None:
    """Send quiet-hours digests. Every replica runs this; deterministic outbox ids keep the
    effects single. (Approvals expire through the due index's consumer, not here.) At start
    it also sends the digest of any client unmuted while no replica could (a crash between a
    change and its digest)."""
    unmuted_checked = False
    while not stopping.is_set():
        if not unmuted_checked:
            try:
                await runtime.modes.flush_unmuted()
                unmuted_checked = True
            except Exception as error:
                if not stopping.is_set():
                    log.warning("unmuted_digest_failed", error=type(error).__name__)
        try:
            await runtime.notifications.flush_digest()
        except Exception as error:  # keep the loop alive through NATS hiccups
            if not stopping.is_set():
                log.warning("housekeeping_failed", error=type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)


def create_app(settings: EventsSettings | None = None) -> Service:
    settings = settings or EventsSettings()
    service = Service(SERVICE_NAME, settings, CONTRACT)
    background: list[asyncio.Task[None]] = []
    senders: list[WebhookSender] = []

    async def connect(js: JetStreamContext) -> Bindings:
        runtime = await build_runtime(service, settings)
        sender = WebhookSender(
            publisher=JetStreamPublisher(js),
            sign=auth_signer(service.broker),
            http=httpx.AsyncClient(),
            allowed=AllowList.from_env(),
            clock=system_clock,
            retry_window_s=settings.webhook_retry_window_s,
            timeout_s=settings.webhook_timeout_s,
        )
        senders.append(sender)
        background.append(
            asyncio.create_task(
                housekeeping(runtime, settings.expiry_interval_s, service.stopping),
                name="events-housekeeping",
            )
        )
        return handlers.bindings(runtime, sender, settings.submit_linger_ms / 1000)

    service.connect_with(connect)

    @service.on_stop
    async def stop_domain() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sender in senders:
            with contextlib.suppress(Exception):
                await sender.http.aclose()

    async def runtime_ready() -> CheckResult:
        if service.ready:
            return CheckResult("pass")
        return CheckResult("fail", "domain services not built yet")

    async def allowed_users_configured() -> CheckResult:
        if settings.allowed_users:
            return CheckResult("pass", observed_value=len(settings.allowed_users))
        return CheckResult("warn", "TELEGRAM_ALLOWED_USERS is empty: nobody receives anything")

    service.health.add("events:runtime", runtime_ready)
    service.health.add("events:allowed_users", allowed_users_configured)
    return service
