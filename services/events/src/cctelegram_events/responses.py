"""Response records: written to ``CCTG_RESPONSES``, read back for the response tools.

Streams are append-only, so ``clear_old_responses`` does not delete: it moves the caller's
"cleared before" marker (``cctg_state[responses.cleared.<client>]``) forward, and every
query skips what lies before the marker. The stream's max age removes records for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from cctelegram_common import subjects
from cctelegram_common.contracts.responses import (
    ActionableResponse,
    ClearedResponses,
    PendingResponses,
    PendingSummary,
    ResponseKind,
    ResponseRecord,
    ResponsesPage,
    ResponsesQuery,
    ResponseView,
)
from cctelegram_events import metrics
from cctelegram_events.ports import Clock, KvStore, Publisher, key_part

CLEARED_PREFIX = "responses.cleared."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
APPROVE_ACTION = "approve"
DENY_ACTION = "deny"


class ResponseReader(Protocol):
    async def since(self, start: datetime) -> list[ResponseRecord]:
        """Every stored response recorded at or after ``start``, oldest first."""
        ...


class StreamResponseReader:
    """Reads ``CCTG_RESPONSES`` with a short-lived ordered consumer from a start time."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def since(self, start: datetime) -> list[ResponseRecord]:
        subscription = await self.js.subscribe(
            subjects.RESPONSES_ALL,
            stream=subjects.STREAM_RESPONSES,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            config=ConsumerConfig(opt_start_time=start.astimezone(UTC)),
            inactive_threshold=30.0,
        )
        records: list[ResponseRecord] = []
        try:
            info = await subscription.consumer_info()
            # Messages may already be on their way to us, so count delivered ones too.
            delivered = info.delivered.consumer_seq if info.delivered else 0
            expected = (info.num_pending or 0) + (delivered or 0)
            while len(records) < expected:
                try:
                    message = await subscription.next_msg(timeout=2.0)
                except nats.errors.TimeoutError:
                    break
                try:
                    records.append(ResponseRecord.model_validate_json(message.data))
                except ValueError:
                    expected -= 1  # not ours (a foreign publisher); skip it
                if not message.metadata.num_pending:
                    break
        finally:
            await subscription.unsubscribe()
        return records


@dataclass
class ResponseLog:
    publisher: Publisher
    reader: ResponseReader
    state_kv: KvStore
    clock: Clock

    async def record(self, response: ResponseRecord) -> None:
        await self.publisher.publish(
            subjects.response_subject(response.kind.value),
            response,
            msg_id=response.response_id,
            stream=subjects.STREAM_RESPONSES,
        )
        metrics.RESPONSES_RECORDED.labels(response.kind.value).inc()

    async def _cleared_before(self, client_id: str) -> datetime:
        entry = await self.state_kv.get(CLEARED_PREFIX + key_part(client_id))
        if entry is None:
            return EPOCH
        return datetime.fromisoformat(entry.value.decode())

    async def _visible(self, query: ResponsesQuery, start: datetime) -> list[ResponseRecord]:
        cleared_before = await self._cleared_before(query.client_id)
        start = max(start, cleared_before)
        return [
            record
            for record in await self.reader.since(start)
            if record.recorded_at >= start
            and (query.read_all or record.client_id == query.client_id)
        ]

    async def list(self, query: ResponsesQuery) -> ResponsesPage:
        """``get_telegram_responses``: newest first, ``limit`` of ``total``."""
        records = await self._visible(query, EPOCH)
        newest = sorted(records, key=lambda r: r.recorded_at, reverse=True)[: query.limit]
        return ResponsesPage(
            count=len(newest), total=len(records), responses=tuple(view(r) for r in newest)
        )

    async def pending(self, query: ResponsesQuery) -> PendingResponses:
        """``process_pending_responses``: answers in the last ``since_minutes`` to act on."""
        window_start = self.clock() - timedelta(minutes=query.since_minutes)
        records = await self._visible(query, window_start)
        actionable = [
            record
            for record in records
            if record.approval_id is not None
            and record.accepted
            and record.kind in (ResponseKind.BUTTON, ResponseKind.TEXT)
            and record.option_index is not None
        ]
        approvals = sum(1 for record in actionable if record.action == APPROVE_ACTION)
        denials = sum(1 for record in actionable if record.action == DENY_ACTION)
        recommendations: list[str] = []
        if approvals:
            recommendations.append(f"{approvals} approval(s) received: proceed with those tasks.")
        if denials:
            recommendations.append(f"{denials} denial(s) received: stop or rethink those tasks.")
        others = len(actionable) - approvals - denials
        if others:
            recommendations.append(f"{others} custom choice(s) received: follow the options.")
        if not actionable:
            recommendations.append(
                "No decisions in this window; wait_for_approval blocks until one."
            )
        return PendingResponses(
            summary=PendingSummary(
                total_recent_responses=len(records),
                actionable_responses=len(actionable),
                pending_approvals=approvals,
                pending_denials=denials,
                time_window_minutes=query.since_minutes,
            ),
            actionable_responses=tuple(
                ActionableResponse(
                    action=record.action,
                    task_id=record.task_id,
                    approval_id=record.approval_id,
                    user_id=record.user_id,
                    username=record.username,
                    timestamp=record.recorded_at,
                    response_data={
                        "option_index": record.option_index,
                        "text": record.text,
                        "kind": record.kind.value,
                        "event_id": record.event_id,
                    },
                )
                for record in sorted(actionable, key=lambda r: r.recorded_at, reverse=True)
            ),
            recommendations=tuple(recommendations),
        )

    async def clear(self, query: ResponsesQuery) -> ClearedResponses:
        """``clear_old_responses``: hide this caller's responses older than the cut-off."""
        previous = await self._cleared_before(query.client_id)
        cutoff = self.clock() - timedelta(hours=query.older_than_hours)
        if cutoff <= previous:
            return ClearedResponses(deleted_count=0, message="Nothing older to clear")
        hidden = [
            record
            for record in await self.reader.since(previous)
            if previous <= record.recorded_at < cutoff
            and (query.read_all or record.client_id == query.client_id)
        ]
        await self.state_kv.put(
            CLEARED_PREFIX + key_part(query.client_id), cutoff.isoformat().encode()
        )
        return ClearedResponses(
            deleted_count=len(hidden),
            message=f"Cleared {len(hidden)} response(s) older than {query.older_than_hours} h",
        )


def view(record: ResponseRecord) -> ResponseView:
    return ResponseView(
        id=record.response_id,
        kind=record.kind,
        user_id=record.user_id,
        username=record.username,
        action=record.action,
        approval_id=record.approval_id,
        event_id=record.event_id,
        task_id=record.task_id,
        option_index=record.option_index,
        text=record.text,
        accepted=record.accepted,
        files=record.files,
        timestamp=record.recorded_at,
    )
