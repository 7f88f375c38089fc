"""The running notifier: wires consumer, receiver, lease and Bot API together, obeys bridge
control, writes heartbeats and answers the readiness checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from datetime import UTC, datetime

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from cctelegram_common import __version__, subjects
from cctelegram_common.contracts.bridge import (
    BotView,
    BridgeControl,
    CircuitState,
    ControlAction,
    NotifierHeartbeat,
)
from cctelegram_common.contracts.routing import DEFAULT_BOT
from cctelegram_common.health import CheckResult
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import JetStreamPublisher, kv_put_with_ttl
from cctelegram_common.resilience import CircuitBreaker
from cctelegram_notifier import metrics
from cctelegram_notifier.delivery import ApiHealth, DeliveryService, Interrupter
from cctelegram_notifier.files import InboundFiles, ObjectStoreUploads
from cctelegram_notifier.lease import PollerLease
from cctelegram_notifier.outbox import OutboxConsumer
from cctelegram_notifier.poller import UpdatesReceiver
from cctelegram_notifier.scheduler import Scheduler
from cctelegram_notifier.settings import NotifierSettings, WebhookSettings
from cctelegram_notifier.store import KvDeliveryStore
from cctelegram_notifier.telegram import HttpBotApi, TelegramError, TelegramUnavailableError
from cctelegram_notifier.topics import KvTopicStore

log = get_logger(__name__)

NO_TOKEN = "no bot token"  # noqa: S105 - a message, not a secret
CONFLICT_ALARM_S = 300.0  # a 409 keeps readiness at warn this long


class BotLink:
    """One bot: its client, its own delivery budget (scheduler, circuit breaker), its outbox
    consumer and its poller. Nothing here is shared with another bot, so one bot's 429s,
    backlog or outage never slow another."""

    def __init__(self, name: str | None, token: str, settings: NotifierSettings) -> None:
        self.name = name
        self.api_health = ApiHealth()
        self.breaker = CircuitBreaker(
            failure_threshold=settings.retry.breaker_failures,
            reset_s=settings.retry.breaker_reset_s,
        )
        self.interrupter = Interrupter()
        self.scheduler = Scheduler(
            settings.rate,
            settings.rate_scale,
            sleep=self.interrupter.sleep,
            max_in_flight=settings.telegram.max_in_flight,
        )
        self.bot = HttpBotApi(settings.api_base_url, token, settings.telegram)
        self.consumer: OutboxConsumer | None = None
        self.receiver: UpdatesReceiver | None = None
        self.lease: PollerLease | None = None

    @property
    def label(self) -> str:
        return self.name or DEFAULT_BOT

    def view(self) -> BotView:
        counters = self.consumer.counters if self.consumer else None
        return BotView(
            name=self.label,
            poller=bool(self.lease and self.lease.held),
            in_flight=self.consumer.held if self.consumer else 0,
            sent_count=counters.sent if counters else 0,
            failed_count=counters.failed if counters else 0,
            rate_limited_count=self.scheduler.rate_limited_count,
            circuit_state=CircuitState(self.breaker.state.value),
            last_error=self.api_health.last_error,
            token_rejected=self.api_health.token_rejected,
        )


class NotifierRuntime:
    """Everything the notifier does after NATS is up. ``start`` is idempotent."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.instance_id = settings.instance_id
        self.started_at = datetime.now(UTC)
        self.paused = False
        self.links = [
            BotLink(name, token.get_secret_value(), settings)
            for name, token in settings.all_bots().items()
        ]
        self.bridge_kv: KeyValue | None = None
        self.js: JetStreamContext | None = None
        self.stopping = asyncio.Event()
        self.conflict: tuple[float, str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._control_lock = asyncio.Lock()
        self._cpu_sample = (time.monotonic(), time.process_time())
        # Without any token the default bot's figures still exist (health, heartbeat).
        self._idle = ApiHealth(), CircuitBreaker(failure_threshold=1, reset_s=1.0)

    # The first bot (the default one when configured): what single-bot callers look at.
    @property
    def primary(self) -> BotLink | None:
        return self.links[0] if self.links else None

    @property
    def bot(self) -> HttpBotApi | None:
        return self.primary.bot if self.primary else None

    @property
    def consumer(self) -> OutboxConsumer | None:
        return self.primary.consumer if self.primary else None

    @property
    def receiver(self) -> UpdatesReceiver | None:
        return self.primary.receiver if self.primary else None

    @property
    def lease(self) -> PollerLease | None:
        return self.primary.lease if self.primary else None

    @property
    def api_health(self) -> ApiHealth:
        return self.primary.api_health if self.primary else self._idle[0]

    @property
    def breaker(self) -> CircuitBreaker:
        return self.primary.breaker if self.primary else self._idle[1]

    def link(self, name: str | None) -> BotLink | None:
        return next((link for link in self.links if link.name == name), None)

    # --- start and stop --------------------------------------------------------------------
    async def start(self, js: JetStreamContext) -> None:
        if self.js is not None:
            return  # connect_forever may call hooks again after a failed attempt
        self.js = js
        self.bridge_kv = await js.key_value(subjects.KV_BRIDGE)
        deliveries_kv = await js.key_value(subjects.KV_DELIVERIES)
        publisher = JetStreamPublisher(js)
        self.paused = await self._read_desired_paused()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        if not self.links:
            log.warning("telegram_disabled", reason=NO_TOKEN)
            return
        for link in self.links:
            await self._start_link(
                link, js, KvDeliveryStore(deliveries_kv, bot=link.name), publisher
            )
        log.info(
            "notifier_started",
            paused=self.paused,
            bots=[link.label for link in self.links],
            updates=self.receiver.mode if self.receiver else "off",
            rate_scale=self.settings.rate_scale,
        )

    async def _start_link(
        self,
        link: BotLink,
        js: JetStreamContext,
        store: KvDeliveryStore,
        publisher: JetStreamPublisher,
    ) -> None:
        assert self.bridge_kv is not None
        topics = KvTopicStore(self.bridge_kv, link.name)
        if self.settings.outbox.enabled:
            delivery = DeliveryService(
                link.bot,
                link.scheduler,
                link.breaker,
                store,
                self.settings.retry,
                interrupter=link.interrupter,
                api_health=link.api_health,
                topics=topics,
                uploads=ObjectStoreUploads(js),
            )
            link.consumer = OutboxConsumer(
                js,
                delivery,
                store,
                publisher,
                self.settings.outbox,
                link.interrupter,
                on_token_rejected=lambda error: self._token_rejected(link, error),
                coalesce=self.settings.coalesce,
                bot=link.name,
            )
            await link.consumer.start(fetching=not self.paused)
        # Webhook mode serves the default bot (the gateway receives its POSTs); named bots poll.
        # Named bots poll even when the default bot's updates come by webhook.
        webhook = self.settings.webhook if link.name is None else WebhookSettings()
        polling = self.settings.polling
        if link.name is not None and self.settings.webhook.url:
            polling = polling.model_copy(update={"enabled": True})
        if polling.enabled or webhook.url:
            link.lease = PollerLease(
                js,
                self.bridge_kv,
                self.instance_id,
                ttl_s=self.settings.polling.lease_ttl_s,
                check_s=self.settings.polling.lease_check_s,
                key=(
                    subjects.BRIDGE_KEY_POLLER_LEASE
                    if link.name is None
                    else subjects.bridge_poller_key(link.name, "lease")
                ),
            )
            link.receiver = UpdatesReceiver(
                link.bot,
                link.lease,
                self.bridge_kv,
                publisher,
                store,
                polling,
                webhook,
                on_conflict=self._conflict,
                on_token_rejected=lambda error: self._token_rejected(link, error),
                on_answer=lambda: self._telegram_answered(link),
                bot_name=link.name,
                topics=topics,
                inbound_files=InboundFiles(js, link.bot, link.bot, bot_name=link.name),
            )
            self._tasks.append(
                asyncio.create_task(link.lease.run(self.stopping), name=f"lease-{link.label}")
            )
            self._tasks.append(
                asyncio.create_task(link.receiver.run(self.stopping), name=f"updates-{link.label}")
            )

    async def stop(self) -> None:
        """Finish in-flight sends, hand the rest back, give up the leases, say goodbye."""
        self.stopping.set()
        await asyncio.gather(
            *(link.consumer.stop() for link in self.links if link.consumer is not None)
        )
        for link in self.links:
            if link.lease is not None:
                await link.lease.release()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.bridge_kv is not None:
            with contextlib.suppress(Exception):
                await self.bridge_kv.delete(subjects.bridge_instance_key(self.instance_id))
        for link in self.links:
            await link.bot.aclose()

    async def _read_desired_paused(self) -> bool:
        assert self.bridge_kv is not None
        try:
            entry = await self.bridge_kv.get(subjects.BRIDGE_KEY_DESIRED)
        except nats.js.errors.KeyNotFoundError:
            return False
        if not entry.value:
            return False
        try:
            return bool(json.loads(entry.value).get("paused", False))
        except (ValueError, AttributeError):
            log.warning("bridge_desired_unreadable")
            return False

    # --- control ---------------------------------------------------------------------------
    async def apply(self, control: BridgeControl) -> None:
        """pause: fetch nothing; resume: fetch again; restart: drain, reset, reconnect."""
        async with self._control_lock:
            log.info("bridge_control", action=control.action.value, by=control.requested_by)
            if control.action is ControlAction.PAUSE:
                self.paused = True
                await asyncio.gather(
                    *(link.consumer.pause() for link in self.links if link.consumer is not None)
                )
            elif control.action is ControlAction.RESUME:
                self.paused = False
                for link in self.links:
                    self._resume_if_allowed(link)
            elif control.action is ControlAction.RESTART:
                for link in self.links:
                    if link.consumer is not None:
                        await link.consumer.pause()
                    link.breaker.reset()
                    link.api_health.token_rejected = False
                    await link.bot.reconnect()
                    self._resume_if_allowed(link)

    def _resume_if_allowed(self, link: BotLink) -> None:
        if link.consumer is not None and not self.paused and not link.api_health.token_rejected:
            link.consumer.resume()

    def _token_rejected(self, link: BotLink, error: str) -> None:
        if not link.api_health.token_rejected or (link.consumer and link.consumer.fetching):
            log.error("telegram_token_rejected_stop_sending", bot=link.label, error=error)
        link.api_health.token_rejected = True
        link.api_health.last_error = error
        if link.consumer is not None and link.consumer.fetching:
            self._tasks.append(asyncio.create_task(link.consumer.pause(), name="token-pause"))
            self._tasks.append(asyncio.create_task(self._token_probe(link), name="token-probe"))

    async def _token_probe(self, link: BotLink) -> None:
        """While the token is rejected, ask getMe now and then; resume when it works again."""
        while not self.stopping.is_set() and link.api_health.token_rejected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 30.0)
            try:
                await link.bot.call("getMe", {})
            except (TelegramError, TelegramUnavailableError):
                continue
            log.warning("telegram_token_accepted_again", bot=link.label)
            link.api_health.token_rejected = False
            self._resume_if_allowed(link)

    def _conflict(self, description: str) -> None:
        self.conflict = (time.monotonic(), description)

    def _telegram_answered(self, link: BotLink) -> None:
        link.api_health.answered = True
        metrics.BRIDGE_CONNECTION.set(1)

    # --- heartbeats ------------------------------------------------------------------------
    def heartbeat(self) -> NotifierHeartbeat:
        views = [link.view() for link in self.links]
        sends = [
            link.api_health.last_send_at for link in self.links if link.api_health.last_send_at
        ]
        last_send = max(sends) if sends else None
        return NotifierHeartbeat(
            instance_id=self.instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            started_at=self.started_at,
            paused=self.paused,
            poller=bool(self.lease and self.lease.held),
            in_flight=sum(view.in_flight for view in views),
            sent_count=sum(view.sent_count for view in views),
            failed_count=sum(view.failed_count for view in views),
            circuit_state=CircuitState(self.breaker.state.value),
            last_error=self.api_health.last_error or (NO_TOKEN if self.bot is None else None),
            last_send_at=datetime.fromtimestamp(last_send, UTC) if last_send else None,
            token_rejected=self.api_health.token_rejected,
            bots=tuple(views) if len(views) > 1 or (views and views[0].name != DEFAULT_BOT) else (),
            memory_usage_mb=_resident_mb(),
            cpu_usage_percent=self._cpu_percent(),
        )

    def _cpu_percent(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._cpu_sample
        self._cpu_sample = (wall, cpu)
        return round(100.0 * (cpu - last_cpu) / max(wall - last_wall, 1e-6), 1)

    async def _heartbeat_loop(self) -> None:
        assert self.js is not None
        key = subjects.bridge_instance_key(self.instance_id)
        while not self.stopping.is_set():
            try:
                await kv_put_with_ttl(
                    self.js,
                    subjects.KV_BRIDGE,
                    key,
                    self.heartbeat().model_dump_json().encode(),
                    self.settings.heartbeat_ttl_s,
                )
                pending = 0
                for link in self.links:
                    if link.consumer is not None and link.consumer.subscription is not None:
                        info = await link.consumer.subscription.consumer_info()
                        pending += (info.num_pending or 0) + (info.num_ack_pending or 0)
                metrics.OUTBOX_PENDING.set(pending)
            except Exception as error:
                log.warning("heartbeat_failed", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.heartbeat_interval_s)

    # --- readiness -------------------------------------------------------------------------
    async def check_token(self) -> CheckResult:
        if self.bot is None:
            return CheckResult("warn", f"{NO_TOKEN}: set TELEGRAM_BOT_TOKEN; nothing is sent")
        rejected = [link.label for link in self.links if link.api_health.token_rejected]
        if rejected and len(rejected) == len(self.links):
            return CheckResult("fail", "Telegram rejected the bot token (401/404); sending stopped")
        if rejected:
            return CheckResult(
                "warn", f"Telegram rejected the token of bot(s) {', '.join(rejected)} (401/404)"
            )
        return CheckResult("pass")

    async def check_api(self) -> CheckResult:
        if self.bot is None:
            return CheckResult("warn", NO_TOKEN)
        if self.breaker.state.value != "closed":
            return CheckResult("warn", f"circuit {self.breaker.state.value}: Bot API failing")
        if self.api_health.answered is False:
            return CheckResult("warn", f"last call failed: {self.api_health.last_error}")
        if self.paused:
            return CheckResult("pass", "paused by bridge control")
        return CheckResult("pass")

    async def check_conflict(self) -> CheckResult:
        if self.conflict and time.monotonic() - self.conflict[0] < CONFLICT_ALARM_S:
            return CheckResult("warn", f"409 from Telegram: {self.conflict[1]}")
        return CheckResult("pass", observed_value=self.receiver.mode if self.receiver else "off")


def _resident_mb() -> float | None:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1_048_576, 1)
