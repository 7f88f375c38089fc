"""Decision webhooks: queue one delivery per closed approval, then POST it, signed, until the
receiver says 2xx or the retry window (an hour by default) is over; then dead-letter it.

Events owns approvals, so events sends. Sending never blocks a decision: closing an approval
only publishes a ``WebhookDelivery`` on ``CCTG_WEBHOOKS`` (deduplicated by delivery id = one
per approval and outcome); the ``events-webhooks`` consumer does the HTTP. The signing
secret never leaves auth: each attempt asks auth to sign the exact body
(``cctg.auth.rpc.sign_webhook``).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from faststream.nats import NatsBroker

from cctelegram_common import __version__, subjects
from cctelegram_common.consumers import BatchItem, Durable, Outcome
from cctelegram_common.contracts.approvals import ApprovalRecord
from cctelegram_common.contracts.tools import approval_view
from cctelegram_common.contracts.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    SignWebhookRequest,
    WebhookDeadLettered,
    WebhookDelivery,
    WebhookSignature,
)
from cctelegram_common.logging import get_logger
from cctelegram_common.messaging import Consume
from cctelegram_common.nats import RpcFailedError, rpc_call
from cctelegram_common.webhooks import AllowList, DestinationRefusedError, check_resolved
from cctelegram_events import metrics
from cctelegram_events.ports import Clock, Publisher

log = get_logger(__name__)
DELIVERY_NAMESPACE = uuid.UUID("0b5a3c52-3f7e-4d7e-9d55-2a4f0f7f4c11")
# The first retries come quickly (a receiver restarting), later ones every few minutes.
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 300.0


class RetryLaterError(Exception):
    """This attempt failed in a way worth retrying; hand the message back for a while."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


def delivery_for(record: ApprovalRecord) -> WebhookDelivery:
    """The one delivery of this approval's outcome (same id however often it is built)."""
    assert record.callback_url is not None
    event = f"approval.{record.status.value}"
    delivery_id = uuid.uuid5(DELIVERY_NAMESPACE, f"{record.approval_id}\x00{event}").hex
    payload = {
        "event": event,
        "delivery_id": delivery_id,
        "approval": approval_view(record).model_dump(mode="json"),
    }
    return WebhookDelivery(
        delivery_id=delivery_id,
        event=event,
        client_id=record.client_id,
        url=record.callback_url,
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        approval_id=record.approval_id,
        created_at=record.decided_at or datetime.now(UTC),
    )


async def publish_webhook(publisher: Publisher, record: ApprovalRecord) -> None:
    delivery = delivery_for(record)
    await publisher.publish(
        subjects.WEBHOOK_DELIVER,
        delivery,
        msg_id=f"webhook-{delivery.delivery_id}",
        stream=subjects.STREAM_WEBHOOKS,
    )


Signer = Callable[[str, int, str], Awaitable[str | None]]


def auth_signer(broker: NatsBroker, timeout_s: float = 5.0) -> Signer:
    """Ask auth for the signature header; None when the client has no webhook secret."""

    async def sign(client_id: str, timestamp: int, body: str) -> str | None:
        request = SignWebhookRequest(client_id=client_id, timestamp=timestamp, body=body)
        try:
            signed = await rpc_call(
                broker,
                subjects.AUTH_RPC_SIGN_WEBHOOK,
                request,
                WebhookSignature,
                timeout_s=timeout_s,
            )
        except RpcFailedError as failed:
            if failed.error.code == "not_found":
                return None
            raise RetryLaterError(f"auth could not sign: {failed.error.message}", 5.0) from None
        return signed.header

    return sign


def retry_delay(attempt: int) -> float:
    """Exponential from 1 s, capped at 5 min, with ±20 % jitter."""
    ceiling = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** max(attempt - 1, 0))
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
    return float(ceiling * jitter)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


@dataclass
class WebhookSender:
    publisher: Publisher
    sign: Signer
    http: httpx.AsyncClient
    allowed: AllowList
    clock: Clock
    retry_window_s: float = 3900.0
    timeout_s: float = 10.0

    async def deliver(self, delivery: WebhookDelivery, attempt: int) -> None:
        """One attempt. Returns when done (delivered or dead-lettered); raises
        ``RetryLaterError`` to be handed back."""
        age_s = (self.clock() - delivery.created_at).total_seconds()
        try:
            await check_resolved(delivery.url, self.allowed)
        except DestinationRefusedError as refused:
            await self._dead(delivery, f"destination refused: {refused}", attempt, None)
            return
        timestamp = int(time.time())
        header = await self.sign(delivery.client_id, timestamp, delivery.body)
        if header is None:
            await self._again(
                delivery, attempt, age_s, "no webhook secret for this client", None, None
            )
            return
        try:
            response = await self.http.post(
                delivery.url,
                content=delivery.body.encode(),
                headers={
                    "content-type": "application/json",
                    "user-agent": f"cctelegram-webhooks/{__version__}",
                    SIGNATURE_HEADER: header,
                    EVENT_HEADER: delivery.event,
                    DELIVERY_HEADER: delivery.delivery_id,
                },
                timeout=self.timeout_s,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            await self._again(delivery, attempt, age_s, "timed out", None, None)
            return
        except httpx.HTTPError as error:
            await self._again(
                delivery, attempt, age_s, f"connection failed ({type(error).__name__})", None, None
            )
            return
        status = response.status_code
        if 200 <= status < 300:
            metrics.WEBHOOKS.labels("delivered").inc()
            metrics.WEBHOOK_SECONDS.observe(max(0.0, age_s))
            log.info(
                "webhook_delivered",
                delivery_id=delivery.delivery_id,
                approval_id=delivery.approval_id,
                attempt=attempt,
                status=status,
            )
            return
        if status >= 500 or status in (408, 429):
            await self._again(
                delivery, attempt, age_s, f"HTTP {status}", status, _retry_after(response)
            )
            return
        # 3xx and other 4xx: the receiver will not change its mind by itself.
        await self._dead(delivery, f"HTTP {status} (not retried)", attempt, status)

    async def _again(
        self,
        delivery: WebhookDelivery,
        attempt: int,
        age_s: float,
        reason: str,
        status: int | None,
        hinted_s: float | None,
    ) -> None:
        if age_s >= self.retry_window_s:
            await self._dead(
                delivery, f"{reason}; gave up after {self.retry_window_s:.0f} s", attempt, status
            )
            return
        metrics.WEBHOOKS.labels("retried").inc()
        delay = min(MAX_RETRY_S, hinted_s) if hinted_s is not None else retry_delay(attempt)
        delay = max(0.1, min(delay, self.retry_window_s - age_s + 1.0))
        log.info(
            "webhook_retrying",
            delivery_id=delivery.delivery_id,
            attempt=attempt,
            reason=reason,
            retry_in_s=round(delay, 2),
        )
        raise RetryLaterError(reason, delay)

    async def _dead(
        self, delivery: WebhookDelivery, reason: str, attempts: int, status: int | None
    ) -> None:
        metrics.WEBHOOKS.labels("dead_lettered").inc()
        log.warning(
            "webhook_dead_lettered",
            delivery_id=delivery.delivery_id,
            approval_id=delivery.approval_id,
            reason=reason,
            attempts=attempts,
        )
        await self.publisher.publish(
            subjects.DEAD_LETTER_WEBHOOK,
            WebhookDeadLettered(
                delivery=delivery, reason=reason, attempts=attempts, last_status=status
            ),
            msg_id=f"webhook-dead-{delivery.delivery_id}",
            stream=subjects.STREAM_DEAD_LETTER,
        )


def webhook_durable(declared: Consume, sender: WebhookSender) -> Durable[Any]:
    """Deliveries are attempted side by side (one slow receiver does not hold up the others);
    each failed attempt is handed back with the delay ``WebhookSender`` chose."""

    async def batch(items: Sequence[BatchItem[WebhookDelivery]]) -> Sequence[Outcome]:
        async def one(item: BatchItem[WebhookDelivery]) -> Outcome:
            metadata = getattr(item.message, "metadata", None)
            attempt = int(getattr(metadata, "num_delivered", 1) or 1)
            try:
                await item.run(sender.deliver(item.value, attempt))
            except Exception as error:
                return error
            return None

        return await asyncio.gather(*(one(item) for item in items))

    return Durable.of(
        declared,
        batch_work=batch,
        description="POST decision webhooks, retried with backoff, dead-lettered after the window",
        batch_size=32,
        # Longer than an attempt (HTTP timeout + signing) so a slow receiver is not redelivered
        # while still being tried.
        ack_wait_s=60.0,
        # The retry window, not a count, ends the retries.
        max_deliver=-1,
    )
