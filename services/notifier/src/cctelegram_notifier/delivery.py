"""Delivering one outbox message: the Bot API call, Telegram's error policy, bounded retries.

Plain rules over injected collaborators (bot API, scheduler, breaker, store, sleep), so every
branch of the policy is unit-testable without NATS or HTTP.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from cctelegram_common.contracts.files import FileInfo
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryRecord,
    Operation,
    OutboxMessage,
)
from cctelegram_common.contracts.routing import ForumTopicRef
from cctelegram_common.logging import get_logger
from cctelegram_common.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    backoff_delay,
)
from cctelegram_notifier import metrics
from cctelegram_notifier.coalesce import join, merged_message, replace_member
from cctelegram_notifier.publishing import patiently
from cctelegram_notifier.scheduler import Grant, Scheduler, Sleep
from cctelegram_notifier.settings import RetrySettings
from cctelegram_notifier.store import DeliveryStore, MergedMessage
from cctelegram_notifier.telegram import BotApi, TelegramError, TelegramUnavailableError, Upload
from cctelegram_notifier.topics import TopicStore

log = get_logger(__name__)


class FailureReason(StrEnum):
    """Why a message was dead-lettered: the first word of ``DeadLetter.reason``."""

    BLOCKED = "recipient_gone"  # 403: blocked, kicked, deactivated
    BAD_REQUEST = "bad_request"  # 400 and other 4xx we do not retry
    PARSE_ENTITIES = "parse_entities"  # plain-text resend failed too
    UNAVAILABLE = "telegram_unavailable"  # 5xx / network beyond the retry budget
    RATE_LIMITED = "rate_limited"  # more 429s than the budget allows
    EXPIRED = "retry_budget_exhausted"  # max_total_s passed
    EDIT_TARGET_UNKNOWN = "edit_target_unknown"
    CHAT_MIGRATED = "chat_migrated"  # an edit in a group that became a supergroup
    CHAT_INACTIVE = "chat_inactive"  # marked inactive earlier (403)
    INVALID_PAYLOAD = "invalid_payload"
    REDELIVERED_TOO_OFTEN = "redelivered_too_often"


class Action(StrEnum):
    """What Telegram's answer tells us to do (§1.8 of the Bot API reference)."""

    RATE_LIMITED = "rate_limited"
    RESEND_PLAIN = "resend_plain"
    NOT_MODIFIED = "not_modified"
    MIGRATED = "migrated"
    RECIPIENT_GONE = "recipient_gone"
    TOKEN_REJECTED = "token_rejected"  # noqa: S105 - an action, not a password
    PERMANENT = "permanent"


def classify(error: TelegramError) -> Action:
    """Telegram's error → the notifier's action. Everything unlisted is permanent: not retried."""
    description = error.description.lower()
    if error.error_code == 429:
        return Action.RATE_LIMITED
    if error.migrate_to_chat_id is not None:
        return Action.MIGRATED
    if error.error_code == 400 and "can't parse entities" in description:
        return Action.RESEND_PLAIN
    if error.error_code == 400 and "message is not modified" in description:
        return Action.NOT_MODIFIED
    if error.error_code == 403:
        return Action.RECIPIENT_GONE
    if error.error_code in (401, 404):
        return Action.TOKEN_REJECTED
    return Action.PERMANENT


_SENDS = frozenset({Operation.SEND_MESSAGE, Operation.SEND_DOCUMENT, Operation.SEND_PHOTO})
# Telegram's words for a deleted topic and a closed one (400 Bad Request).
THREAD_GONE = "message thread not found"
TOPIC_CLOSED = "topic_closed"

_HTML_TAG = re.compile(r"<[^>]*>")
_MARKDOWN_ESCAPE = re.compile(r"\\([_*\[\]()~`>#+\-=|{}.!\\])")


def to_plain_text(text: str, parse_mode: str | None) -> str:
    """What a person should read when Telegram cannot parse the formatting."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return html.unescape(_HTML_TAG.sub("", text))
    if mode == "markdownv2":
        return _MARKDOWN_ESCAPE.sub(r"\1", text)
    return text


class FileGoneError(Exception):
    """The stored file to send is no longer there (aged out of the object store)."""


class UploadSource(Protocol):
    """Opens a stored file for a multipart upload."""

    async def open(self, stored: FileInfo) -> Upload: ...


class TokenRejectedError(Exception):
    """401/404: the token is wrong or revoked. Stop everything and say so loudly."""


class DeliveryInterruptedError(Exception):
    """Pause, restart or shutdown while the message was waiting: hand it back."""


@dataclass
class Interrupter:
    """Turns every wait of the delivery path into one that a pause or shutdown can cut short."""

    event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def interrupted(self) -> bool:
        return self.event.is_set()

    def check(self) -> None:
        if self.event.is_set():
            raise DeliveryInterruptedError

    async def sleep(self, seconds: float) -> None:
        self.check()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return
        raise DeliveryInterruptedError


@dataclass(frozen=True)
class DeliveryResult:
    """How one outbox message ended."""

    outcome: DeliveryOutcome
    chat_id: int  # where it went: after a migration, the new id
    telegram_message_ids: tuple[int, ...] = ()
    attempts: int = 0
    reason: FailureReason | None = None
    error: str | None = None
    error_code: int | None = None
    migrated_to_chat_id: int | None = None
    already_recorded: bool = False
    message_thread_id: int | None = None

    @classmethod
    def recorded(cls, record: DeliveryRecord) -> DeliveryResult:
        """Telegram accepted it earlier (a redelivery): report it again, never resend."""
        return cls(
            DeliveryOutcome.SENT,
            record.chat_id,
            record.telegram_message_ids,
            already_recorded=True,
        )

    @property
    def dead_letter_reason(self) -> str:
        detail = f": {self.error}" if self.error else ""
        return f"{self.reason.value if self.reason else 'failed'}{detail}"


def _keyboard(message: OutboxMessage) -> dict[str, Any] | None:
    if message.keyboard is None:
        return None
    rows = [[button.model_dump(exclude_none=True) for button in row] for row in message.keyboard]
    return {"inline_keyboard": rows}


def build_call(
    message: OutboxMessage, chat_id: int, target_message_id: int | None, *, plain: bool = False
) -> tuple[str, dict[str, Any]]:
    """The Bot API method and parameters of one outbox message.

    Only Bot API parameters: the message's typed fields and ``message.bot_api``; its
    ``bookkeeping`` never reaches Telegram.
    """
    text = (
        to_plain_text(message.text, message.parse_mode) if plain and message.text else message.text
    )
    parse_mode = None if plain else message.parse_mode
    common: dict[str, Any] = {"chat_id": chat_id}
    if message.operation is Operation.ANSWER_CALLBACK_QUERY:
        params: dict[str, Any] = {
            "callback_query_id": message.callback_query_id,
            "text": text,
            "show_alert": message.show_alert or None,
        }
        return "answerCallbackQuery", params
    if message.operation in (Operation.EDIT_MESSAGE_TEXT, Operation.EDIT_REPLY_MARKUP):
        common["message_id"] = target_message_id
        if message.operation is Operation.EDIT_REPLY_MARKUP:
            # No reply_markup at all removes the keyboard, which is what None means here.
            return "editMessageReplyMarkup", {
                **common,
                "reply_markup": _keyboard(message),
            }
        return "editMessageText", {
            **common,
            "text": text,
            "parse_mode": parse_mode,
            "reply_markup": _keyboard(message),
            **message.bot_api.parameters(message.operation),
        }
    common.update(
        message_thread_id=message.message_thread_id,
        disable_notification=message.disable_notification or None,
        reply_markup=_keyboard(message),
    )
    if message.reply_to_message_id is not None:
        common["reply_parameters"] = {
            "message_id": message.reply_to_message_id,
            "allow_sending_without_reply": True,
        }
    if message.operation is Operation.SEND_MESSAGE:
        return "sendMessage", {
            **common,
            "text": text,
            "parse_mode": parse_mode,
            **message.bot_api.parameters(message.operation),
        }
    field_name = "document" if message.operation is Operation.SEND_DOCUMENT else "photo"
    method = "sendDocument" if message.operation is Operation.SEND_DOCUMENT else "sendPhoto"
    return method, {
        **common,
        field_name: message.file_ref,
        "caption": text,
        "parse_mode": parse_mode if text else None,
        **message.bot_api.parameters(message.operation),
    }


def _message_ids(result: Any, fallback: int | None) -> tuple[int, ...]:
    if isinstance(result, dict) and isinstance(result.get("message_id"), int):
        return (int(result["message_id"]),)
    return (fallback,) if fallback is not None else ()


@dataclass(frozen=True)
class _Attempt:
    """One call's outcome: a finished result, or the error that decides what comes next."""

    attempts: int
    result: DeliveryResult | None = None
    error: Exception | None = None


@dataclass
class ApiHealth:
    """What the last calls said about Telegram, for health checks and heartbeats."""

    answered: bool | None = None
    last_error: str | None = None
    token_rejected: bool = False
    last_send_at: float | None = None


class DeliveryService:
    """Sends one outbox message the way Telegram wants it sent, or says why it cannot."""

    def __init__(
        self,
        bot: BotApi,
        scheduler: Scheduler,
        breaker: CircuitBreaker,
        store: DeliveryStore,
        retry: RetrySettings,
        *,
        interrupter: Interrupter | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        api_health: ApiHealth | None = None,
        topics: TopicStore | None = None,
        uploads: UploadSource | None = None,
    ) -> None:
        self.topics = topics
        self.bot = bot
        self.uploads = uploads
        self.scheduler = scheduler
        self.breaker = breaker
        self.store = store
        self.retry = retry
        self.interrupter = interrupter
        self.sleep: Sleep = sleep or (interrupter.sleep if interrupter else asyncio.sleep)
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self.api_health = api_health or ApiHealth()

    async def _target_message_id(self, message: OutboxMessage) -> int | None:
        if message.target_message_id is not None:
            return message.target_message_id
        if message.target_outbox_id is None:
            return None
        record = await self.store.get_record(message.target_outbox_id)
        return record.telegram_message_ids[0] if record and record.telegram_message_ids else None

    async def _effective_chat(self, chat_id: int) -> int:
        # Follow a chain of migrations (there is at most one in practice); bounded anyway.
        for _ in range(3):
            new_id = await self.store.migrated_to(chat_id)
            if new_id is None or new_id == chat_id:
                break
            chat_id = new_id
        return chat_id

    async def deliver(self, message: OutboxMessage) -> DeliveryResult:
        """Send (or skip, if already recorded) one message; raises only
        ``TokenRejectedError`` and ``DeliveryInterruptedError``."""
        record = await self.store.get_record(message.outbox_id)
        if record is not None:
            return DeliveryResult.recorded(record)
        return await self._send(message, (message,))

    async def deliver_merged(self, members: Sequence[OutboxMessage]) -> DeliveryResult:
        """Send several plain notifications (none recorded yet, same chat and thread, in
        order) as one Telegram message; the result holds for each of them. Once Telegram
        accepted it, every member's delivery record is written before the call's in-flight
        permit is released. A 400 (bad markup, too long) is returned, not retried as plain
        text: the caller then sends the members one by one, each under the usual policy."""
        if len(members) == 1:
            return await self._send(members[0], (members[0],))
        return await self._send(merged_message(members), tuple(members))

    async def _send(
        self, message: OutboxMessage, members: tuple[OutboxMessage, ...]
    ) -> DeliveryResult:
        merged = len(members) > 1
        chat_id = await self._effective_chat(message.chat_id)
        migrated = chat_id if chat_id != message.chat_id else None
        is_edit = message.operation in (Operation.EDIT_MESSAGE_TEXT, Operation.EDIT_REPLY_MARKUP)
        is_answer = message.operation is Operation.ANSWER_CALLBACK_QUERY
        topic = message.topic if message.operation in _SENDS and self.topics else None
        recreated = False

        def failed(
            reason: FailureReason, error: str | None, code: int | None, attempts: int
        ) -> DeliveryResult:
            return DeliveryResult(
                DeliveryOutcome.FAILED,
                chat_id,
                attempts=attempts,
                reason=reason,
                error=error,
                error_code=code,
                migrated_to_chat_id=migrated,
            )

        if not is_answer:
            inactive = await self.store.inactive_reason(chat_id)
            if inactive is not None:
                return failed(FailureReason.CHAT_INACTIVE, inactive, 403, 0)
        target = await self._target_message_id(message) if is_edit else None
        if is_edit and target is None:
            return failed(
                FailureReason.EDIT_TARGET_UNKNOWN,
                f"no delivery recorded for {message.target_outbox_id}",
                None,
                0,
            )
        if is_edit and migrated is not None:
            return failed(
                FailureReason.CHAT_MIGRATED, "the message to edit is in the old group", 400, 0
            )
        rewritten: MergedMessage | None = None
        if message.operation is Operation.EDIT_MESSAGE_TEXT and target is not None:
            message, rewritten = await self._edit_of_merged(message, chat_id, target)
        upload: Upload | None = None
        if message.stored_file is not None:
            if self.uploads is None:
                return failed(FailureReason.INVALID_PAYLOAD, "no file store here", None, 0)
            try:
                upload = await self.uploads.open(message.stored_file)
            except FileGoneError as gone:
                return failed(FailureReason.INVALID_PAYLOAD, str(gone), None, 0)

        if topic is not None:
            message = await self._in_topic(message, chat_id, topic)

        plain = False
        attempts = unavailable = limited = 0
        started = self.clock()
        while True:
            if self.clock() - started > self.retry.max_total_s and attempts:
                return failed(FailureReason.EXPIRED, self.api_health.last_error, None, attempts)
            await self._wait_for_circuit()
            grant = await self.scheduler.acquire(
                None if is_answer else chat_id, counts=not is_answer
            )
            try:
                outcome = await self._attempt(
                    message, members, chat_id, target, plain, grant, rewritten, upload
                )
            finally:
                self.scheduler.release(grant)
            attempts += outcome.attempts
            if outcome.result is not None:
                return replace(outcome.result, attempts=attempts, migrated_to_chat_id=migrated)
            error = outcome.error
            if isinstance(error, TelegramUnavailableError):
                unavailable += 1
                if unavailable >= self.retry.max_attempts:
                    return failed(FailureReason.UNAVAILABLE, str(error), error.status, attempts)
                await self.sleep(
                    backoff_delay(unavailable, self.retry.base_s, self.retry.cap_s, self.rng)
                )
                continue
            if not isinstance(error, TelegramError):
                continue  # the circuit opened under us: wait for it
            action = classify(error)
            if action is Action.RATE_LIMITED:
                limited += 1
                scope = self.scheduler.rate_limited(
                    None if is_answer else chat_id, error.retry_after_s or 1.0
                )
                metrics.RATE_LIMITED.labels(scope.value).inc()
                if limited >= self.retry.max_rate_limited:
                    return failed(FailureReason.RATE_LIMITED, error.description, 429, attempts)
                continue
            if action is Action.RESEND_PLAIN and not plain and message.text and not merged:
                plain = True
                log.info("resend_as_plain_text", outbox_id=message.outbox_id)
                continue
            if action is Action.RESEND_PLAIN:
                return failed(FailureReason.PARSE_ENTITIES, error.description, 400, attempts)
            if action is Action.MIGRATED and error.migrate_to_chat_id is not None:
                new_chat_id = error.migrate_to_chat_id
                await self.store.remember_migration(chat_id, new_chat_id)
                log.info("chat_migrated", chat_id=chat_id, new_chat_id=new_chat_id)
                migrated = chat_id = new_chat_id
                if is_edit or attempts > 3:
                    return failed(FailureReason.CHAT_MIGRATED, error.description, 400, attempts)
                continue
            if action is Action.RECIPIENT_GONE:
                await self.store.mark_inactive(chat_id, error.description)
                return failed(FailureReason.BLOCKED, error.description, 403, attempts)
            if action is Action.TOKEN_REJECTED:
                self.api_health.token_rejected = True
                raise TokenRejectedError(str(error)) from None
            thread = message.message_thread_id
            if topic is not None and thread is not None and error.error_code == 400:
                described = error.description.lower()
                if THREAD_GONE in described and not recreated:
                    # Someone deleted the topic: make it again, once, and send there.
                    assert self.topics is not None
                    await self.topics.forget(chat_id, topic.key, thread)
                    recreated = True
                    log.info("forum_topic_recreated", chat_id=chat_id, old_thread=thread)
                    message = await self._in_topic(message, chat_id, topic)
                    continue
                if TOPIC_CLOSED in described:
                    # Closed by an admin: the message still goes out, in the General topic.
                    log.warning("forum_topic_closed", chat_id=chat_id, thread=thread)
                    message = message.model_copy(update={"message_thread_id": None})
                    continue
            return failed(FailureReason.BAD_REQUEST, error.description, error.error_code, attempts)

    async def _in_topic(
        self, message: OutboxMessage, chat_id: int, topic: ForumTopicRef
    ) -> OutboxMessage:
        """The message aimed at its topic's thread: the one remembered, or a new topic."""
        assert self.topics is not None
        thread = await self.topics.thread_of(chat_id, topic.key)
        if thread is None:
            thread = await self._create_topic(chat_id, topic)
        return message.model_copy(update={"message_thread_id": thread})

    async def _create_topic(self, chat_id: int, topic: ForumTopicRef) -> int | None:
        """createForumTopic (it posts a service message, so it takes a chat call). None when
        Telegram refuses (not a forum, no right to manage topics): the message then goes to
        the General topic rather than nowhere."""
        assert self.topics is not None
        for failures in range(1, self.retry.max_attempts + 1):
            await self._wait_for_circuit()
            grant = await self.scheduler.acquire(chat_id, counts=True)
            try:
                try:
                    answer = await self.bot.call(
                        "createForumTopic", {"chat_id": chat_id, "name": topic.name}
                    )
                finally:
                    self.scheduler.answered(grant)
            except TelegramUnavailableError as error:
                self._record_unavailable(error)
                await self.sleep(backoff_delay(failures, self.retry.base_s, self.retry.cap_s))
                continue
            except TelegramError as error:
                self._record_answer(error)
                action = classify(error)
                if action is Action.RATE_LIMITED:
                    self.scheduler.rate_limited(chat_id, error.retry_after_s or 1.0)
                    continue
                if action is Action.TOKEN_REJECTED:
                    raise TokenRejectedError(str(error)) from None
                log.warning("forum_topic_not_created", chat_id=chat_id, error=error.description)
                return None
            finally:
                self.scheduler.release(grant)
            thread = int(answer["message_thread_id"])
            winner = await self.topics.claim(chat_id, topic.key, topic.name, thread)
            metrics.FORUM_TOPICS_CREATED.inc()
            log.info("forum_topic_created", chat_id=chat_id, thread=thread)
            if winner != thread:  # another replica made it first: ours goes
                try:
                    await self.bot.call(
                        "deleteForumTopic", {"chat_id": chat_id, "message_thread_id": thread}
                    )
                except (TelegramError, TelegramUnavailableError) as error:
                    log.warning("forum_topic_duplicate_left", chat_id=chat_id, error=str(error))
            return winner
        return None

    async def _edit_of_merged(
        self, message: OutboxMessage, chat_id: int, target: int
    ) -> tuple[OutboxMessage, MergedMessage | None]:
        """An edit of one original that was sent inside a coalesced message rewrites only
        that original's part (a live task card, say): the others stay as they were."""
        if message.target_outbox_id is None or message.text is None:
            return message, None
        merged = await self.store.get_merged(chat_id, target)
        if merged is None:
            return message, None
        text = message.text
        if (message.parse_mode or "").lower() != (merged.parse_mode or "").lower():
            # Bring the edit into the merged message's parse mode.
            text = to_plain_text(text, message.parse_mode)
            if (merged.parse_mode or "").lower() == "html":
                text = html.escape(text, quote=False)
        members = replace_member(merged.members, message.target_outbox_id, text)
        if members is None:
            return message, None
        rewritten = merged.model_copy(update={"members": tuple(members)})
        edit = message.model_copy(
            update={"text": join([part for _, part in members]), "parse_mode": merged.parse_mode}
        )
        return edit, rewritten

    async def _attempt(
        self,
        message: OutboxMessage,
        members: tuple[OutboxMessage, ...],
        chat_id: int,
        target: int | None,
        plain: bool,
        grant: Grant,
        rewritten: MergedMessage | None = None,
        upload: Upload | None = None,
    ) -> _Attempt:
        """One call while holding the scheduler's grant; on success the records are written
        before the grant is given back, so a crash can only duplicate calls in flight."""
        if self.interrupter is not None:
            self.interrupter.check()
        try:
            self.breaker.before_call()
        except CircuitOpenError as error:
            return _Attempt(0, error=error)  # another lane's trial call is out
        method, params = build_call(message, chat_id, target, plain=plain)
        try:
            try:
                if upload is not None:
                    answer = await self.bot.call(method, params, upload=upload)
                else:
                    answer = await self.bot.call(method, params)
            finally:
                self.scheduler.answered(grant)
        except TelegramUnavailableError as error:
            self._record_unavailable(error)
            return _Attempt(1, error=error)
        except TelegramError as error:
            self._record_answer(error)
            if classify(error) is not Action.NOT_MODIFIED:
                return _Attempt(1, error=error)
            answer = None  # "message is not modified": the edit is already there
        else:
            self.breaker.record_success()
            self._record_ok()
        ids = _message_ids(answer, target)
        if message.operation is not Operation.ANSWER_CALLBACK_QUERY:
            await self._record(members, chat_id, ids, plain, rewritten)
        return _Attempt(1, result=self._sent(message, chat_id, ids))

    async def _record(
        self,
        members: tuple[OutboxMessage, ...],
        chat_id: int,
        ids: tuple[int, ...],
        plain: bool,
        rewritten: MergedMessage | None,
    ) -> None:
        """Delivery records of everything this call carried. A merged message's parts are
        stored first (an edit of one part must find them), then every member's record at
        once: a crash can leave some recorded and some not, and a redelivery then resends
        only the unrecorded ones (one duplicate message per crash, as for a single send)."""
        if rewritten is not None:
            if plain:
                rewritten = rewritten.model_copy(
                    update={
                        "parse_mode": None,
                        "members": tuple(
                            (member_id, to_plain_text(text, rewritten.parse_mode))
                            for member_id, text in rewritten.members
                        ),
                    }
                )
            stored = rewritten
            await patiently(lambda: self.store.put_merged(stored))
        if len(members) > 1 and ids:
            merged = MergedMessage(
                chat_id=chat_id,
                message_id=ids[0],
                parse_mode=members[0].parse_mode,
                members=tuple(
                    (member.outbox_id, (member.text or "").strip()) for member in members
                ),
            )
            await patiently(lambda: self.store.put_merged(merged))
        records = [
            DeliveryRecord(outbox_id=member.outbox_id, chat_id=chat_id, telegram_message_ids=ids)
            for member in members
        ]
        await asyncio.gather(*(patiently(partial(self.store.put_record, r)) for r in records))

    def _sent(self, message: OutboxMessage, chat_id: int, ids: tuple[int, ...]) -> DeliveryResult:
        metrics.MESSAGES_SENT.labels(message.operation.value).inc()
        self.api_health.last_send_at = time.time()
        return DeliveryResult(
            DeliveryOutcome.SENT, chat_id, ids, message_thread_id=message.message_thread_id
        )

    async def _wait_for_circuit(self) -> None:
        while self.breaker.state is CircuitState.OPEN:
            remaining = self.breaker.reset_s - (self.breaker.clock() - self.breaker.opened_at)
            if remaining <= 0:
                return
            await self.sleep(remaining)

    def _record_unavailable(self, error: TelegramUnavailableError) -> None:
        self.breaker.record_failure()
        code = str(error.status) if error.status else error.kind.lower()
        metrics.API_ERRORS.labels(code).inc()
        metrics.BRIDGE_CONNECTION.set(0)
        self.api_health.answered = False
        self.api_health.last_error = str(error)

    def _record_answer(self, error: TelegramError) -> None:
        # Telegram answered: the API is up even though this call was refused.
        self.breaker.record_success()
        metrics.API_ERRORS.labels(str(error.error_code)).inc()
        metrics.BRIDGE_CONNECTION.set(1)
        self.api_health.answered = True
        self.api_health.last_error = str(error)
        if error.error_code not in (401, 404):
            self.api_health.token_rejected = False

    def _record_ok(self) -> None:
        metrics.BRIDGE_CONNECTION.set(1)
        self.api_health.answered = True
        self.api_health.token_rejected = False
