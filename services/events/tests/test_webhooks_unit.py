"""The webhook sender's decisions, with a fake receiver (httpx MockTransport) and publisher:
2xx delivered, 5xx / timeouts retried with backoff (Retry-After honoured), 4xx and refused
destinations dead-lettered at once, failures past the window dead-lettered with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from events_harness import FakeKv, ManualClock, MemoryResponseReader, RecordingPublisher

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import (
    ApprovalRecord,
    ApprovalStatus,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.webhooks import WebhookDeadLettered, WebhookDelivery
from cctelegram_common.webhooks import AllowList, verify_signature
from cctelegram_events.approval_rules import ApprovalError
from cctelegram_events.approvals import ApprovalService
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.responses import ResponseLog
from cctelegram_events.webhooks import RetryLaterError, WebhookSender, delivery_for

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_unit"


def record(status: ApprovalStatus = ApprovalStatus.APPROVED, url: str = "http://127.0.0.1/h"):
    return ApprovalRecord(
        approval_id="a" * 32,
        client_id="ci",
        title="Deploy?",
        options=("Approve", "Reject"),
        approvers=(1,),
        status=status,
        chosen_option="Approve",
        decided_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        callback_url=url,
    )


async def signer(_client: str, timestamp: int, body: str) -> str | None:
    from cctelegram_common.webhooks import sign

    return sign(SECRET, body.encode(), timestamp)


def sender(handler, publisher: RecordingPublisher, now: datetime = NOW) -> WebhookSender:
    return WebhookSender(
        publisher=publisher,
        sign=signer,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        allowed=AllowList.parse("127.0.0.1"),
        clock=lambda: now,
        retry_window_s=3600,
    )


def dead(publisher: RecordingPublisher) -> list[WebhookDeadLettered]:
    return [
        payload
        for subject, payload in publisher.published
        if subject == subjects.DEAD_LETTER_WEBHOOK and isinstance(payload, WebhookDeadLettered)
    ]


def test_one_delivery_id_per_approval_and_outcome() -> None:
    assert delivery_for(record()).delivery_id == delivery_for(record()).delivery_id
    cancelled = delivery_for(record(ApprovalStatus.CANCELLED))
    assert cancelled.delivery_id != delivery_for(record()).delivery_id
    assert cancelled.event == "approval.cancelled"


async def test_a_2xx_is_delivered_signed() -> None:
    seen: list[httpx.Request] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    publisher = RecordingPublisher()
    await sender(ok, publisher).deliver(delivery_for(record()), 1)
    (request,) = seen
    assert verify_signature(SECRET, request.headers["x-cctelegram-signature"], request.content)
    assert request.headers["x-cctelegram-event"] == "approval.approved"
    assert publisher.published == []


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
async def test_5xx_and_busy_answers_are_retried_later(status: int) -> None:
    publisher = RecordingPublisher()
    answer = sender(lambda _r: httpx.Response(status), publisher)
    with pytest.raises(RetryLaterError) as first:
        await answer.deliver(delivery_for(record()), 1)
    with pytest.raises(RetryLaterError) as later:
        await answer.deliver(delivery_for(record()), 9)
    assert 0 < first.value.retry_after_s < later.value.retry_after_s <= 300 * 1.2
    assert dead(publisher) == []


async def test_retry_after_is_honoured_and_timeouts_retried() -> None:
    publisher = RecordingPublisher()
    busy = sender(lambda _r: httpx.Response(503, headers={"Retry-After": "42"}), publisher)
    with pytest.raises(RetryLaterError) as hinted:
        await busy.deliver(delivery_for(record()), 1)
    assert hinted.value.retry_after_s == 42

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetryLaterError, match="timed out"):
        await sender(slow, publisher).deliver(delivery_for(record()), 1)


async def test_4xx_is_dead_lettered_at_once_with_the_status() -> None:
    publisher = RecordingPublisher()
    await sender(lambda _r: httpx.Response(404), publisher).deliver(delivery_for(record()), 1)
    (letter,) = dead(publisher)
    assert letter.last_status == 404
    assert "404" in letter.reason


async def test_failures_past_the_window_are_dead_lettered() -> None:
    publisher = RecordingPublisher()
    late = sender(
        lambda _r: httpx.Response(500), publisher, now=NOW + timedelta(hours=1, seconds=1)
    )
    await late.deliver(delivery_for(record()), 21)
    (letter,) = dead(publisher)
    assert "gave up after 3600 s" in letter.reason
    assert letter.attempts == 21


async def test_a_private_destination_is_dead_lettered_without_a_request() -> None:
    requests: list[httpx.Request] = []

    def never(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200)

    publisher = RecordingPublisher()
    await sender(never, publisher).deliver(delivery_for(record(url="https://10.0.0.7/h")), 1)
    (letter,) = dead(publisher)
    assert "destination refused" in letter.reason
    assert requests == []


async def test_a_change_finding_the_approval_closed_requeues_its_webhook_only_recently() -> None:
    """A crash between the compare-and-set and the publish: the retried change finds the
    approval closed and publishes the delivery again (JetStream deduplicates it when the
    first publish made it) — within 5 minutes of the decision, never later."""
    clock = ManualClock(NOW)
    publisher = RecordingPublisher()
    state_kv = FakeKv()
    service = ApprovalService(
        approvals_kv=FakeKv(),
        status_kv=FakeKv(),
        state_kv=state_kv,
        publisher=publisher,
        signer=CallbackSigner(b"s" * 32),
        responses=ResponseLog(publisher, MemoryResponseReader(publisher), state_kv, clock),
        clock=clock,
        allowed_users=(1,),
    )
    command = SubmitApproval(
        approval_id="b" * 32,
        client_id="ci",
        title="Deploy?",
        expires_at=NOW + timedelta(minutes=30),
        submitted_at=NOW,
        callback_url="https://ci.example.com/hook",
    )
    await service.submit(command)
    cancel = CancelApprovalRequest(approval_id=command.approval_id, client_id="ci")
    closed = await service.cancel(cancel)

    def webhooks() -> list[str]:
        return [
            payload.delivery_id
            for subject, payload in publisher.published
            if subject == subjects.WEBHOOK_DELIVER and isinstance(payload, WebhookDelivery)
        ]

    assert webhooks() == [delivery_for(closed).delivery_id]
    publisher.seen_ids.clear()  # as if the first publish had never been stored
    clock.advance(60)
    with pytest.raises(ApprovalError):
        await service.cancel(cancel)  # the retried change
    assert webhooks() == [delivery_for(closed).delivery_id] * 2
    publisher.seen_ids.clear()
    clock.advance(600)
    with pytest.raises(ApprovalError):
        await service.cancel(cancel)  # a stale retry: nothing more
    assert len(webhooks()) == 2
