"""Inbound updates: getUpdates long polling by the lease holder (or webhook registration),
each update stored in the updates stream before its offset is confirmed to Telegram."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import nats.js.errors
from nats.js.kv import KeyValue

from cctelegram_common import subjects
from cctelegram_common.contracts.updates import (
    ButtonPressed,
    CommandIssued,
    InboundUpdate,
    MemberChanged,
    TelegramEvent,
    TextReceived,
)
from cctelegram_common.logging import get_logger
from cctelegram_common.resilience import backoff_delay
from cctelegram_notifier import metrics
from cctelegram_notifier.files import InboundFiles
from cctelegram_notifier.lease import PollerLease
from cctelegram_notifier.publishing import Publisher, publish_update
from cctelegram_notifier.settings import PollingSettings, WebhookSettings
from cctelegram_notifier.store import DeliveryStore
from cctelegram_notifier.telegram import BotApi, TelegramError, TelegramUnavailableError
from cctelegram_notifier.topics import TopicStore

log = get_logger(__name__)

# Statuses of my_chat_member that mean the bot can (not) write to the chat any more.
_GONE = {"kicked", "left"}
_BACK = {"member", "administrator", "creator"}


class UpdatesReceiver:
    """Runs while this instance holds the lease: polls, or registers the webhook once."""

    def __init__(
        self,
        bot: BotApi,
        lease: PollerLease,
        bridge_kv: KeyValue,
        publisher: Publisher,
        store: DeliveryStore,
        polling: PollingSettings,
        webhook: WebhookSettings,
        *,
        on_conflict: Callable[[str], None],
        on_token_rejected: Callable[[str], None],
        on_answer: Callable[[], None] = lambda: None,
        bot_name: str | None = None,
        topics: TopicStore | None = None,
        inbound_files: InboundFiles | None = None,
    ) -> None:
        self.bot_name = bot_name
        self.topics = topics
        self.offset_key = (
            subjects.BRIDGE_KEY_POLLER_OFFSET
            if bot_name is None
            else subjects.bridge_poller_key(bot_name, "offset")
        )
        self.bot = bot
        self.inbound_files = inbound_files
        self.lease = lease
        self.kv = bridge_kv
        self.publisher = publisher
        self.store = store
        self.polling = polling
        self.webhook = webhook
        self.on_conflict = on_conflict
        self.on_token_rejected = on_token_rejected
        self.on_answer = on_answer
        self.offset: int | None = None
        self.received = 0
        self._term = -1
        self._failures = 0

    @property
    def mode(self) -> str:
        if self.webhook.url:
            return "webhook"
        return "polling" if self.polling.enabled else "off"

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if not self.lease.held:
                self.lease.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.lease.changed.wait(), self.lease.check_s)
                continue
            try:
                if self.lease.term != self._term:
                    await self._start_term()
                    self._term = self.lease.term
                if self.mode == "polling":
                    await self.poll_once()
                else:
                    # Webhook registered (or receiving off): nothing to do but hold the lease.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), self.lease.check_s)
                self._failures = 0
            except Exception as error:
                await self._failed(error, stopping)

    async def _start_term(self) -> None:
        """A new leadership: read the offset others confirmed, set up polling or webhook."""
        self.offset = await self._read_offset()
        if self.mode == "webhook":
            assert self.webhook.url is not None
            secret = self.webhook.secret_token
            await self.bot.call(
                "setWebhook",
                {
                    "url": self.webhook.url,
                    "secret_token": secret.get_secret_value() if secret else None,
                    "allowed_updates": self.polling.allowed_updates,
                    "max_connections": self.webhook.max_connections,
                    "drop_pending_updates": self.webhook.drop_pending_updates or None,
                },
            )
            log.info("webhook_registered")
        elif self.mode == "polling":
            # getUpdates answers 409 while a webhook is set; polling was asked for.
            await self.bot.call("deleteWebhook", {})
        self.on_answer()

    async def _read_offset(self) -> int | None:
        try:
            entry = await self.kv.get(self.offset_key)
        except nats.js.errors.KeyNotFoundError:
            return None
        return int(entry.value.decode()) if entry.value else None

    async def poll_once(self) -> int:
        """One getUpdates; every update is stored before the next call confirms it."""
        # Never hold a long poll beyond the lease: a successor must not meet ours (409).
        timeout = int(min(self.polling.timeout_s, self.lease.remaining_s() - 1.0))
        if timeout < 0:
            await asyncio.sleep(0.2)
            return 0
        updates = await self.bot.call(
            "getUpdates",
            {
                "offset": self.offset,
                "limit": self.polling.limit,
                "timeout": timeout,
                "allowed_updates": self.polling.allowed_updates,
            },
            timeout_s=timeout + 10.0,
        )
        self.on_answer()
        if not isinstance(updates, list) or not updates:
            return 0
        for update in updates:
            await self.handle_update(update, source="polling")
        last = max(int(update["update_id"]) for update in updates)
        self.offset = last + 1
        if self.lease.held:
            await self.kv.put(self.offset_key, str(self.offset).encode())
        return len(updates)

    async def handle_update(self, update: dict[str, Any], *, source: str) -> None:
        # The Telegram edge: the raw Update becomes typed contracts here, once, tagged with
        # the bot that received it and the route topic it came from; a document or photo in
        # it is fetched and stored first.
        inbound = InboundUpdate.from_telegram(
            update,
            source=source,
            bot=self.bot_name,
            files=await self.inbound_files.fetch(update) if self.inbound_files else (),
        )
        topic_key = await self._topic_of(inbound.event)
        if topic_key is not None:
            inbound = inbound.model_copy(update={"topic_key": topic_key})
        await publish_update(self.publisher, inbound)
        self.received += 1
        metrics.UPDATES_RECEIVED.labels(source).inc()
        await self._track_membership(inbound.event)

    async def _topic_of(self, event: TelegramEvent) -> str | None:
        """The route topic (project or session) a message or press came from, if any."""
        if self.topics is None:
            return None
        if not isinstance(event, ButtonPressed | TextReceived | CommandIssued):
            return None
        if event.message_thread_id is None:
            return None
        return await self.topics.key_of(event.chat_id, event.message_thread_id)

    async def _track_membership(self, event: TelegramEvent) -> None:
        """A person blocking or unblocking the bot: keep the inactive mark in step."""
        if not isinstance(event, MemberChanged):
            return
        chat_id, status = event.chat_id, event.new_status
        if status in _GONE:
            await self.store.mark_inactive(chat_id, f"my_chat_member: {status}")
        elif status in _BACK:
            await self.store.clear_inactive(chat_id)

    async def _failed(self, error: Exception, stopping: asyncio.Event) -> None:
        self._failures += 1
        delay = backoff_delay(self._failures, base_s=1.0, cap_s=30.0) + 0.5
        if isinstance(error, TelegramError):
            self.on_answer()
            if error.error_code == 409:
                self.on_conflict(error.description)
                log.error("telegram_conflict", method=error.method, error=error.description)
                if "webhook is active" in error.description.lower() and self.mode == "polling":
                    self._term = -1  # delete the webhook again at the next turn
                delay = max(delay, 5.0)
            elif error.error_code in (401, 404):
                self.on_token_rejected(str(error))
                delay = 30.0
            elif error.error_code == 429:
                delay = (error.retry_after_s or 1.0) + 0.1
            else:
                log.warning("updates_call_failed", error=str(error))
        elif isinstance(error, TelegramUnavailableError):
            log.warning("updates_call_failed", error=str(error))
        else:
            log.warning("updates_bookkeeping_failed", error=repr(error)[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)
