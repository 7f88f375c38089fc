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
    BridgeControl,
    CircuitState,
    ControlAction,
    NotifierHeartbeat,
)
from cctelegram_common.health import CheckResult
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import JetStreamPublisher
from cctelegram_common.resilience import CircuitBreaker
from cctelegram_notifier import metrics
from cctelegram_notifier.delivery import ApiHealth, DeliveryService, Interrupter
from cctelegram_notifier.files import InboundFiles, ObjectStoreUploads
from cctelegram_notifier.lease import PollerLease
from cctelegram_notifier.outbox import OutboxConsumer
from cctelegram_notifier.poller import UpdatesReceiver
from cctelegram_notifier.publishing import kv_put_with_ttl
from cctelegram_notifier.scheduler import Scheduler
from cctelegram_notifier.settings import NotifierSettings
from cctelegram_notifier.store import KvDeliveryStore
from cctelegram_notifier.telegram import HttpBotApi, TelegramError, TelegramUnavailableError

log = get_logger(__name__)

NO_TOKEN = "no bot token"  # noqa: S105 - a message, not a secret
CONFLICT_ALARM_S = 300.0  # a 409 keeps readiness at warn this long


class NotifierRuntime:
    """Everything the notifier does after NATS is up. ``start`` is idempotent."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.instance_id = settings.instance_id
        self.started_at = datetime.now(UTC)
        self.paused = False
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
        token = settings.bot_token.get_secret_value() if settings.bot_token else None
        self.bot: HttpBotApi | None = (
            HttpBotApi(settings.api_base_url, token, settings.telegram) if token else None
        )
        self.consumer: OutboxConsumer | None = None
        self.receiver: UpdatesReceiver | None = None
        self.lease: PollerLease | None = None
        self.bridge_kv: KeyValue | None = None
        self.js: JetStreamContext | None = None
        self.stopping = asyncio.Event()
        self.conflict: tuple[float, str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._control_lock = asyncio.Lock()
        self._cpu_sample = (time.monotonic(), time.process_time())

    # --- start and stop --------------------------------------------------------------------
    async def start(self, js: JetStreamContext) -> None:
        if self.js is not None:
            return  # connect_forever may call hooks again after a failed attempt
        self.js = js
        self.bridge_kv = await js.key_value(subjects.KV_BRIDGE)
        store = KvDeliveryStore(await js.key_value(subjects.KV_DELIVERIES))
        publisher = JetStreamPublisher(js)
        self.paused = await self._read_desired_paused()
        self._tasks.append(asyncio.create_task(self._heartbeat_loop(), name="heartbeat"))
        if self.bot is None:
            log.warning("telegram_disabled", reason=NO_TOKEN)
            return
        if self.settings.outbox.enabled:
            delivery = DeliveryService(
                self.bot,
                self.scheduler,
                self.breaker,
                store,
                self.settings.retry,
                interrupter=self.interrupter,
                api_health=self.api_health,
                uploads=ObjectStoreUploads(js),
            )
            self.consumer = OutboxConsumer(
                js,
                delivery,
                store,
                publisher,
                self.settings.outbox,
                self.interrupter,
                on_token_rejected=self._token_rejected,
                coalesce=self.settings.coalesce,
            )
            await self.consumer.start(fetching=not self.paused)
        if self.settings.polling.enabled or self.settings.webhook.url:
            self.lease = PollerLease(
                js,
                self.bridge_kv,
                self.instance_id,
                ttl_s=self.settings.polling.lease_ttl_s,
                check_s=self.settings.polling.lease_check_s,
            )
            self.receiver = UpdatesReceiver(
                self.bot,
                self.lease,
                self.bridge_kv,
                publisher,
                store,
                self.settings.polling,
                self.settings.webhook,
                on_conflict=self._conflict,
                on_token_rejected=self._token_rejected,
                on_answer=self._telegram_answered,
                inbound_files=InboundFiles(js, self.bot, self.bot),
            )
            self._tasks.append(asyncio.create_task(self.lease.run(self.stopping), name="lease"))
            self._tasks.append(
                asyncio.create_task(self.receiver.run(self.stopping), name="updates")
            )
        log.info(
            "notifier_started",
            paused=self.paused,
            updates=self.receiver.mode if self.receiver else "off",
            rate_scale=self.settings.rate_scale,
        )

    async def stop(self) -> None:
        """Finish in-flight sends, hand the rest back, give up the lease, say goodbye."""
        self.stopping.set()
        if self.consumer is not None:
            await self.consumer.stop()
        if self.lease is not None:
            await self.lease.release()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.bridge_kv is not None:
            with contextlib.suppress(Exception):
                await self.bridge_kv.delete(subjects.bridge_instance_key(self.instance_id))
        if self.bot is not None:
            await self.bot.aclose()

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
                if self.consumer is not None:
                    await self.consumer.pause()
            elif control.action is ControlAction.RESUME:
                self.paused = False
                self._resume_if_allowed()
            elif control.action is ControlAction.RESTART:
                if self.consumer is not None:
                    await self.consumer.pause()
                self.breaker.reset()
                self.api_health.token_rejected = False
                if self.bot is not None:
                    await self.bot.reconnect()
                self._resume_if_allowed()

    def _resume_if_allowed(self) -> None:
        if self.consumer is not None and not self.paused and not self.api_health.token_rejected:
            self.consumer.resume()

    def _token_rejected(self, error: str) -> None:
        if not self.api_health.token_rejected or (self.consumer and self.consumer.fetching):
            log.error("telegram_token_rejected_stop_sending", error=error)
        self.api_health.token_rejected = True
        self.api_health.last_error = error
        if self.consumer is not None and self.consumer.fetching:
            self._tasks.append(asyncio.create_task(self.consumer.pause(), name="token-pause"))
            self._tasks.append(asyncio.create_task(self._token_probe(), name="token-probe"))

    async def _token_probe(self) -> None:
        """While the token is rejected, ask getMe now and then; resume when it works again."""
        assert self.bot is not None
        while not self.stopping.is_set() and self.api_health.token_rejected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 30.0)
            try:
                await self.bot.call("getMe", {})
            except (TelegramError, TelegramUnavailableError):
                continue
            log.warning("telegram_token_accepted_again")
            self.api_health.token_rejected = False
            self._resume_if_allowed()

    def _conflict(self, description: str) -> None:
        self.conflict = (time.monotonic(), description)

    def _telegram_answered(self) -> None:
        self.api_health.answered = True
        metrics.BRIDGE_CONNECTION.set(1)

    # --- heartbeats ------------------------------------------------------------------------
    def heartbeat(self) -> NotifierHeartbeat:
        counters = self.consumer.counters if self.consumer else None
        last_send = self.api_health.last_send_at
        return NotifierHeartbeat(
            instance_id=self.instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            started_at=self.started_at,
            paused=self.paused,
            poller=bool(self.lease and self.lease.held),
            in_flight=self.consumer.held if self.consumer else 0,
            sent_count=counters.sent if counters else 0,
            failed_count=counters.failed if counters else 0,
            circuit_state=CircuitState(self.breaker.state.value),
            last_error=self.api_health.last_error or (NO_TOKEN if self.bot is None else None),
            last_send_at=datetime.fromtimestamp(last_send, UTC) if last_send else None,
            token_rejected=self.api_health.token_rejected,
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
                if self.consumer is not None and self.consumer.subscription is not None:
                    info = await self.consumer.subscription.consumer_info()
                    metrics.OUTBOX_PENDING.set(
                        (info.num_pending or 0) + (info.num_ack_pending or 0)
                    )
            except Exception as error:
                log.warning("heartbeat_failed", error=type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.settings.heartbeat_interval_s)

    # --- readiness -------------------------------------------------------------------------
    async def check_token(self) -> CheckResult:
        if self.bot is None:
            return CheckResult("warn", f"{NO_TOKEN}: set TELEGRAM_BOT_TOKEN; nothing is sent")
        if self.api_health.token_rejected:
            return CheckResult("fail", "Telegram rejected the bot token (401/404); sending stopped")
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
