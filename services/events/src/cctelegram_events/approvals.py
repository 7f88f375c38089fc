"""Approvals service: store, index and publish — compare-and-set only.

``ApprovalService`` orchestrates: it creates the card, and applies a press, a reply, the expiry
or a cancel. The rules it applies are pure functions in ``approval_rules`` (what an option
means, each transition of the record); where the cards go and what their messages look like
is ``approval_cards``. This module holds the I/O: storage, the due index, metrics, publishing.

State lives in ``cctg_approvals`` (key = approval id). Every change reads the record with its
revision and writes with ``update(last=revision)``; a conflict means someone else changed it,
so the record is read again and the rule applied again. Only ``pending`` can change, so
exactly one decision wins however many presses, replicas and redeliveries race.

Scale: an open approval sits in the due-time index (``DueIndex``: a NATS message schedule),
which hands it to one replica when it falls due; a closed one leaves the index and is written
with a per-key TTL of the history time, so NATS removes it. Nothing here lists every approval
or remembers approvals in memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from opentelemetry import trace

from cctelegram_common.contracts.approvals import (
    ApprovalRecord,
    ApprovalStatus,
    CancelApprovalRequest,
    CardTarget,
    SubmitApproval,
)
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import EventState, EventStatus
from cctelegram_common.contracts.files import FileInfo
from cctelegram_common.contracts.outbox import (
    DeliveryOutcome,
    DeliveryReported,
    Operation,
    OutboxMessage,
    outbox_id,
)
from cctelegram_common.contracts.responses import ResponseKind, ResponseRecord
from cctelegram_common.logging import get_logger
from cctelegram_common.telemetry import current_traceparent, links_to
from cctelegram_events import metrics
from cctelegram_events.approval_cards import (
    card_edits,
    card_messages,
    escalation_targets,
    msgref_key,
    open_card_text,
    private_chat_targets,
    route_targets,
    targets_of,
)
from cctelegram_events.approval_rules import (
    INVALID_BUTTON,
    NO_LONGER_OPEN,
    NOT_AN_APPROVER,
    ApprovalError,
    Person,
    action_for,
    after_cancel,
    after_escalation,
    after_press,
    after_text_reply,
    after_timeout,
    escalation_due,
    next_due,
    reply_option,
    valid_on_timeout,
)
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.ports import (
    CasConflictError,
    Clock,
    DueIndex,
    KvStore,
    MemoryDueIndex,
    Publisher,
    load,
    publish_outbox,
)
from cctelegram_events.responses import ResponseLog
from cctelegram_events.routing import RouteBook
from cctelegram_events.templates import template_for
from cctelegram_events.webhooks import publish_webhook

log = get_logger(__name__)
# Shorter than CCTG_WEBHOOKS' duplicate window (600 s): a re-publish inside it is deduplicated.
WEBHOOK_REQUEUE_WINDOW_S = 300.0
_tracer = trace.get_tracer("cctelegram.events.approvals")

CAS_ATTEMPTS = 50
DEFAULT_HISTORY_S = 30 * 24 * 3600.0

# A transition rule (``approval_rules.after_*``): the new record, or None to leave it as it is.
_Change = Callable[[ApprovalRecord], ApprovalRecord | None]


@dataclass(frozen=True)
class Routed:
    """What route rules decided for an approval."""

    approvers: tuple[int, ...]
    targets: tuple[CardTarget, ...]
    quorum: int = 1
    escalate_at: datetime | None = None
    escalate_to: str | None = None


@dataclass
class ApprovalService:
    approvals_kv: KvStore
    status_kv: KvStore
    state_kv: KvStore
    publisher: Publisher
    signer: CallbackSigner
    responses: ResponseLog
    clock: Clock
    allowed_users: tuple[int, ...]
    timezone: str = "UTC"
    routes: RouteBook | None = None
    # Open approvals by due time (NATS schedules in production).
    due_index: DueIndex = field(default_factory=MemoryDueIndex)
    # A closed approval is kept this long after its last change, then NATS removes it.
    history_s: float = DEFAULT_HISTORY_S

    def _ttl_of(self, record: ApprovalRecord) -> float | None:
        return None if record.is_open else self.history_s

    async def _leave_index(self, approval_id: str) -> None:
        """Best effort: a schedule left behind fires, finds the approval closed, does nothing."""
        try:
            await self.due_index.remove(approval_id)
        except Exception as error:
            log.warning("due_index_remove_failed", approval_id=approval_id, error=str(error))

    # --- creation ----------------------------------------------------------------------------
    async def _routed(self, command: SubmitApproval) -> Routed | None:
        """Approvers, card targets, quorum and escalation when route rules take this
        approval, else None."""
        if self.routes is None:
            return None
        card = command.claude_code
        project = command.project or (card.project if card is not None else None)
        rules = await self.routes.select(
            client_id=command.client_id,
            project=project,
            event_type=EventType.APPROVAL_REQUEST,
            severity=template_for(EventType.APPROVAL_REQUEST).severity,
        )
        if not rules:
            return None
        default = command.approvers if command.approvers is not None else self.allowed_users
        approvers: list[int] = []
        for rule in rules:
            approvers.extend(rule.approvers if rule.approvers is not None else default)
        escalating = next((rule for rule in rules if rule.escalate_to), None)
        escalate_at = (
            command.submitted_at + timedelta(minutes=escalating.escalate_after_minutes)
            if escalating is not None and escalating.escalate_after_minutes is not None
            else None
        )
        return Routed(
            approvers=tuple(dict.fromkeys(approvers)),
            targets=route_targets(command.approval_id, rules, project, card),
            quorum=max(rule.quorum for rule in rules),
            escalate_at=escalate_at,
            escalate_to=escalating.escalate_to if escalating is not None else None,
        )

    async def submit(self, command: SubmitApproval) -> ApprovalRecord:
        """Create the record and queue the cards, once per approval id."""
        wanted = command.approvers if command.approvers is not None else self.allowed_users
        # Cards go to approvers' private chats: never to someone who is not an allowed user.
        approvers = tuple(dict.fromkeys(a for a in wanted if a in self.allowed_users))
        routed = await self._routed(command)
        targets: tuple[CardTarget, ...] = ()
        if routed is not None:
            # A route names its chats and approvers (an admin set them up).
            approvers, targets = routed.approvers, routed.targets
        else:
            targets = private_chat_targets(command.approval_id, approvers)
        record = ApprovalRecord(
            approval_id=command.approval_id,
            client_id=command.client_id,
            title=command.title,
            description=command.description,
            options=command.options,
            approvers=approvers,
            on_timeout=valid_on_timeout(command),
            details=command.details,
            allow_text_reply=command.allow_text_reply,
            task_id=command.task_id,
            source=command.source,
            text_reply_decides=command.text_reply_decides,
            claude_code=command.claude_code,
            chat_ids=tuple(target.chat_id for target in targets),
            card_outbox_ids=tuple(target.outbox_id for target in targets),
            card_targets=targets if routed is not None else (),
            quorum=min(routed.quorum, max(len(approvers), 1)) if routed else 1,
            escalate_at=routed.escalate_at if routed else None,
            escalate_to=routed.escalate_to if routed else None,
            project=command.project,
            card_text=open_card_text(command),
            created_at=command.submitted_at,
            expires_at=command.expires_at,
            traceparent=current_traceparent(),
            callback_url=command.callback_url,
        )
        if not approvers:
            record = record.model_copy(
                update={
                    "status": ApprovalStatus.CANCELLED,
                    "cancel_reason": "none of the approvers is an allowed Telegram user",
                    "decided_at": self.clock(),
                }
            )
        # The record first: a press can only be honoured once it exists, and Telegram may
        # deliver a press within milliseconds of the card. A redelivered command finds the
        # record and publishes the cards again; they are deduplicated by outbox id (JetStream
        # window, then the notifier's deliveries record), so a crash between the two steps
        # loses no card and sends none twice.
        created = True
        try:
            await self.approvals_kv.create(
                record.approval_id, record.model_dump_json().encode(), ttl_s=self._ttl_of(record)
            )
        except CasConflictError:
            created = False
            stored = await load(self.approvals_kv, command.approval_id, ApprovalRecord)
            if stored is not None:
                record = stored[0]
        if record.is_open:
            # Indexed before the cards go out; a redelivered command indexes it again (the
            # schedule is replaced, not doubled).
            await self.due_index.schedule(record.approval_id, next_due(record))
            await self._publish_cards(record, targets_of(record))
        status = EventStatus(
            event_id=record.approval_id,
            client_id=record.client_id,
            state=EventState.QUEUED if record.chat_ids else EventState.FAILED,
            type=EventType.APPROVAL_REQUEST,
            outbox_ids=record.card_outbox_ids,
            chat_ids=record.chat_ids,
            last_error=record.cancel_reason,
            submitted_at=command.submitted_at,
            updated_at=self.clock(),
        )
        with contextlib.suppress(CasConflictError):
            await self.status_kv.create(record.approval_id, status.model_dump_json().encode())
        if created:
            metrics.APPROVAL_REQUESTS.inc()
            if not record.is_open:  # nobody may decide it: closed at once, say so
                await self._on_closed(record)
        return record

    async def _publish_cards(self, record: ApprovalRecord, targets: tuple[CardTarget, ...]) -> None:
        for message in card_messages(record, targets, self.signer):
            await publish_outbox(self.publisher, message)
            metrics.OUTBOX_PUBLISHED.labels(Operation.SEND_MESSAGE.value).inc()

    async def on_card_delivered(self, report: DeliveryReported) -> None:
        """Remember which Telegram message is which card, so replies find their approval."""
        approval_id = report.approval_id or report.event_id
        if (
            approval_id is None
            or report.outcome is not DeliveryOutcome.SENT
            or report.operation is not Operation.SEND_MESSAGE
        ):
            return
        loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
        if loaded is None or report.outbox_id not in loaded[0].card_outbox_ids:
            return
        for message_id in report.telegram_message_ids:
            # Replies to a card find their approval while the approval is kept, no longer.
            await self.state_kv.put(
                msgref_key(report.chat_id, message_id, report.bot),
                approval_id.encode(),
                ttl_s=self.history_s + (loaded[0].expires_at - self.clock()).total_seconds(),
            )

    async def approval_for_message(
        self, chat_id: int, message_id: int, bot: str | None = None
    ) -> str | None:
        entry = await self.state_kv.get(msgref_key(chat_id, message_id, bot))
        return entry.value.decode() if entry else None

    # --- transitions -------------------------------------------------------------------------
    async def _transition(
        self, approval_id: str, change: _Change, *, scheduled: bool = True
    ) -> tuple[ApprovalRecord | None, ApprovalRecord | None]:
        """Apply ``change`` with compare-and-set. Returns (record as last read, new record or
        None when the change did not apply). ``scheduled=False``: the approval's schedule has
        already fired (and removed itself), so closing it need not touch the index."""
        for _ in range(CAS_ATTEMPTS):
            loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
            if loaded is None:
                return None, None
            record, revision = loaded
            updated = change(record)
            if updated is None:
                if not record.is_open:
                    await self._requeue_webhook(record)
                return record, None
            try:
                await self.approvals_kv.update(
                    approval_id,
                    updated.model_dump_json().encode(),
                    revision,
                    ttl_s=self._ttl_of(updated),
                )
            except CasConflictError:
                continue
            if scheduled and record.is_open and not updated.is_open:
                await self._leave_index(approval_id)
            return record, updated
        raise ApprovalError("conflict", "too many concurrent changes; try again")

    async def _edit_cards(
        self, record: ApprovalRecord, suffix: str, *, progress: bool = False
    ) -> None:
        """Every copy of the card: closed (buttons gone), or — ``progress`` — still open with
        the quorum's count so far."""
        for edit in card_edits(record, suffix, self.timezone, self.signer, progress=progress):
            await publish_outbox(self.publisher, edit)
            metrics.OUTBOX_PUBLISHED.labels(Operation.EDIT_MESSAGE_TEXT.value).inc()

    async def _requeue_webhook(self, record: ApprovalRecord) -> None:
        """A change found the approval already closed: maybe a redelivery after a crash
        between the compare-and-set and the webhook's publish. Publish it again while
        JetStream still deduplicates it (a no-op when the first publish made it), so that
        window loses nothing; later, a stale press or cancel sends nothing."""
        if record.callback_url is None or record.decided_at is None:
            return
        if (self.clock() - record.decided_at).total_seconds() > WEBHOOK_REQUEUE_WINDOW_S:
            return
        try:
            await publish_webhook(self.publisher, record)
        except Exception as error:
            log.warning(
                "webhook_not_requeued", approval_id=record.approval_id, error=type(error).__name__
            )

    async def _on_closed(self, record: ApprovalRecord) -> None:
        """Count the decision and, when the approval has a callback_url, queue its webhook.
        The decision is already recorded: a failure here is logged, never raised."""
        self._closed(record)
        if record.callback_url is None:
            return
        try:
            await publish_webhook(self.publisher, record)
        except Exception as error:
            metrics.WEBHOOKS.labels("not_queued").inc()
            log.warning(
                "webhook_not_queued", approval_id=record.approval_id, error=type(error).__name__
            )

    def _closed(self, record: ApprovalRecord) -> None:
        metrics.APPROVAL_DECISIONS.labels(record.status.value).inc()
        if record.decided_at is not None and record.decided_by_user_id is not None:
            elapsed = (record.decided_at - record.created_at).total_seconds()
            metrics.APPROVAL_DECISION_SECONDS.observe(max(0.0, elapsed))

    async def _answer(
        self, callback_query_id: str, chat_id: int, text: str, bot: str | None = None
    ) -> None:
        await publish_outbox(
            self.publisher,
            OutboxMessage(
                outbox_id=f"cbq-{callback_query_id}",
                operation=Operation.ANSWER_CALLBACK_QUERY,
                chat_id=chat_id,
                bot=bot,
                callback_query_id=callback_query_id,
                text=text[:200],
            ),
        )
        metrics.OUTBOX_PUBLISHED.labels(Operation.ANSWER_CALLBACK_QUERY.value).inc()

    async def press(
        self,
        *,
        update_id: int,
        callback_query_id: str,
        chat_id: int,
        person: Person,
        data: str,
        bot: str | None = None,
        response_key: str | None = None,
        topic_key: str | None = None,
    ) -> str:
        """A button press: answer it, and decide the approval if this press wins."""
        parsed = self.signer.verify(data)
        if parsed is None:
            metrics.CALLBACK_REJECTED.labels("forged").inc()
            await self._answer(callback_query_id, chat_id, INVALID_BUTTON, bot)
            return INVALID_BUTTON
        approval_id, option_index = parsed
        loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
        if loaded is None or option_index >= len(loaded[0].options):
            metrics.CALLBACK_REJECTED.labels("unknown").inc()
            await self._answer(callback_query_id, chat_id, NO_LONGER_OPEN, bot)
            return NO_LONGER_OPEN
        current = loaded[0]
        with _tracer.start_as_current_span(
            "approval.press",
            links=links_to(current.traceparent),
            attributes={"approval.id": approval_id, "approval.option_index": option_index},
        ):
            return await self._press_open_card(
                update_id,
                callback_query_id,
                chat_id,
                person,
                current,
                option_index,
                bot,
                response_key or str(update_id),
                topic_key,
            )

    async def _press_open_card(
        self,
        update_id: int,
        callback_query_id: str,
        chat_id: int,
        person: Person,
        current: ApprovalRecord,
        option_index: int,
        bot: str | None = None,
        response_key: str | None = None,
        topic_key: str | None = None,
    ) -> str:
        approval_id = current.approval_id
        if person.user_id not in current.approvers:
            metrics.CALLBACK_REJECTED.labels("not_approver").inc()
            await self._answer(callback_query_id, chat_id, NOT_AN_APPROVER, bot)
            return NOT_AN_APPROVER
        now = self.clock()
        before, after = await self._transition(
            approval_id, lambda record: after_press(record, option_index, now, person)
        )
        label = current.options[option_index]
        accepted = after is not None
        await self.responses.record(
            ResponseRecord(
                response_id=f"resp-{response_key or update_id}",
                kind=ResponseKind.BUTTON,
                update_id=update_id,
                user_id=person.user_id,
                username=person.display,
                chat_id=chat_id,
                client_id=current.client_id,
                approval_id=approval_id,
                event_id=approval_id,
                task_id=current.task_id,
                action=action_for(label),
                option_index=option_index,
                accepted=accepted,
                bot=bot,
                topic_key=topic_key,
                recorded_at=now,
            )
        )
        if after is None:
            metrics.CALLBACK_REJECTED.labels("closed").inc()
            await self._answer(callback_query_id, chat_id, NO_LONGER_OPEN, bot)
            return NO_LONGER_OPEN
        if after.is_open:  # one vote of a quorum
            answer = f"✅ Recorded: {label} ({len(after.approved_by)} of {after.quorum})"
            await self._answer(callback_query_id, chat_id, answer, bot)
            if len(after.approved_by) > len(before.approved_by if before else ()):
                await self._edit_cards(after, f"votes-{len(after.approved_by)}", progress=True)
            return answer
        answer = f"✅ Recorded: {label}"
        await self._answer(callback_query_id, chat_id, answer, bot)
        await self._edit_cards(after, "closed")
        await self._on_closed(after)
        return answer

    async def owner_of(self, approval_id: str) -> str | None:
        """The client that asked (None when the approval is gone)."""
        loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
        return loaded[0].client_id if loaded is not None else None

    async def text_reply(
        self,
        *,
        update_id: int,
        chat_id: int,
        message_id: int,
        approval_id: str,
        person: Person,
        text: str,
        bot: str | None = None,
        message_thread_id: int | None = None,
        response_key: str | None = None,
        topic_key: str | None = None,
        files: tuple[FileInfo, ...] = (),
    ) -> bool:
        """A text reply to a card: decides when it names an option, else a comment.
        Returns False when the card does not take text replies from this person."""
        loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
        if loaded is None:
            return False
        current = loaded[0]
        if not current.allow_text_reply or person.user_id not in current.approvers:
            return False
        now = self.clock()
        comment = text.strip()[:1000]
        option_index = reply_option(current, text)
        before, after = await self._transition(
            approval_id,
            lambda record: after_text_reply(record, option_index, now, person, comment),
        )
        decided_now = (
            after is not None and before is not None and before.is_open and not after.is_open
        )
        if decided_now and after is not None:
            reply = f"✅ Recorded: {after.chosen_option}"
            action = action_for(after.chosen_option or "")
        elif after is not None and after.is_open:
            choices = " / ".join(current.options)
            reply = f"💬 Noted. Press a button or reply with one of: {choices}"
            action = "comment"
        elif after is not None:
            reply = "💬 Comment added."
            action = "comment"
        else:
            reply = NO_LONGER_OPEN
            action = "comment"
        await self.responses.record(
            ResponseRecord(
                response_id=f"resp-{response_key or update_id}",
                kind=ResponseKind.TEXT,
                update_id=update_id,
                user_id=person.user_id,
                username=person.display,
                chat_id=chat_id,
                client_id=current.client_id,
                approval_id=approval_id,
                event_id=approval_id,
                task_id=current.task_id,
                action=action,
                option_index=option_index if decided_now else None,
                text=comment,
                accepted=after is not None,
                bot=bot,
                topic_key=topic_key,
                files=files,
                recorded_at=now,
            )
        )
        await publish_outbox(
            self.publisher,
            OutboxMessage(
                outbox_id=outbox_id(f"reply-{response_key or update_id}", chat_id, 0),
                operation=Operation.SEND_MESSAGE,
                chat_id=chat_id,
                bot=bot,
                message_thread_id=message_thread_id,
                text=reply[:4000],
                parse_mode=None,
                reply_to_message_id=message_id,
            ),
        )
        if decided_now and after is not None:
            await self._edit_cards(after, "closed")
            await self._on_closed(after)
        elif after is not None and not after.is_open:
            await self._edit_cards(after, f"comment-{update_id}")
        return True

    async def cancel(self, request: CancelApprovalRequest) -> ApprovalRecord:
        loaded = await load(self.approvals_kv, request.approval_id, ApprovalRecord)
        if loaded is None or not (request.read_all or loaded[0].client_id == request.client_id):
            raise ApprovalError("not_found", f"no approval {request.approval_id}")
        now = self.clock()
        reason = request.reason or "Cancelled by the requester"
        before, after = await self._transition(
            request.approval_id, lambda record: after_cancel(record, reason, now)
        )
        if after is None:
            status = before.status.value if before else "gone"
            raise ApprovalError("conflict", f"approval is already {status}")
        await self._edit_cards(after, "closed")
        await self._on_closed(after)
        return after

    async def expire(self, approval_id: str) -> bool:
        """Apply ``on_timeout`` to one approval that fell due (the due index calls this once
        per approval, on one replica; a redelivery or a second replica finds it closed).
        True when this call closed it."""
        now = self.clock()
        if await self._escalate_if_due(approval_id, now):
            return False
        before, after = await self._transition(
            approval_id, lambda record: after_timeout(record, now), scheduled=False
        )
        if after is None:
            if before is not None and before.is_open:
                # Fired early (a clock ahead of ours): put it back in the index.
                await self.due_index.schedule(approval_id, next_due(before))
            return False
        metrics.APPROVAL_EXPIRY_LATENESS_SECONDS.observe(
            max(0.0, (now - after.expires_at).total_seconds())
        )
        await self._edit_cards(after, "closed")
        await self._on_closed(after)
        return True

    async def _escalate_if_due(self, approval_id: str, now: datetime) -> bool:
        """Nobody answered in time: the card also goes to the escalation route (once), whose
        approvers may then decide too. True when this call escalated it."""
        loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
        if loaded is None:
            return False
        current = loaded[0]
        if not escalation_due(current, now):
            return False
        rule = (
            await self.routes.by_name(current.escalate_to)
            if self.routes is not None and current.escalate_to
            else None
        )
        added: tuple[CardTarget, ...] = ()
        approvers: tuple[int, ...] = current.approvers
        if rule is not None:
            added = escalation_targets(current, rule)
            if rule.approvers is not None:
                approvers = tuple(dict.fromkeys((*approvers, *rule.approvers)))
        _before, after = await self._transition(
            approval_id, lambda record: after_escalation(record, approvers, added)
        )
        if after is None:
            return False
        log.info("approval_escalated", approval_id=approval_id, to=current.escalate_to)
        metrics.APPROVAL_ESCALATIONS.inc()
        await self._publish_cards(after, added)
        await self.due_index.schedule(approval_id, after.expires_at)
        return True

    async def open_for(self, user_id: int) -> list[ApprovalRecord]:
        """Open approvals this person may decide (for /pending), oldest first. Reads the due
        index (the open ones), never the whole history."""
        found: list[ApprovalRecord] = []
        for approval_id in await self.due_index.open_ids():
            loaded = await load(self.approvals_kv, approval_id, ApprovalRecord)
            if loaded and loaded[0].is_open and user_id in loaded[0].approvers:
                found.append(loaded[0])
        return sorted(found, key=lambda record: record.created_at)
