"""Thin NATS adapters: decode, call the domain services in the runtime, publish or reply."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.consumers import BatchItem, Durable, Outcome
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import (
    ModeResult,
    QuietHoursResult,
    SetModeRequest,
    SetQuietHoursRequest,
)
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_common.contracts.routing import (
    RouteAddRequest,
    RouteListRequest,
    RouteRemoveRequest,
    RouteRule,
)
from cctelegram_common.contracts.rpc import RpcError
from cctelegram_common.contracts.tools import TemplatesRequest
from cctelegram_common.logging import get_logger
from cctelegram_common.messaging import Bindings, RpcMethod
from cctelegram_common.nats import RpcResponder
from cctelegram_events.approval_rules import ApprovalError
from cctelegram_events.contract import CONTRACT
from cctelegram_events.modes import MODE_MESSAGES
from cctelegram_events.runtime import Runtime
from cctelegram_events.templates import catalogue
from cctelegram_events.webhooks import WebhookSender, webhook_durable

log = get_logger(__name__)


def _refusal(error: Exception) -> RpcError | None:
    if isinstance(error, ApprovalError):
        return RpcError(code=error.code, message=error.message)
    return None


def bindings(runtime: Runtime, webhooks: WebhookSender, submit_linger_s: float = 0.0) -> Bindings:
    """The events contract served by a built runtime: its RPCs and its durable consumers.

    ``submit_linger_s``: see ``EventsSettings.submit_linger_ms`` (measured with
    bench/gateway.py: ~10 % less events CPU and ~25 % less nats-server CPU per event at
    peak, for at most that much added latency while events arrive back to back).
    """
    return Bindings(
        responder=RpcResponder(
            refusal=_refusal, internal_message=lambda method, _: f"{method} failed"
        ),
        rpcs=_rpcs(runtime),
        durables=_durables(runtime, webhooks, submit_linger_s),
    )


def _durables(
    runtime: Runtime, webhooks: WebhookSender, submit_linger_s: float
) -> list[Durable[Any]]:
    """The stored commands and reports the events service works on."""

    async def submit_events(items: Sequence[BatchItem[SubmitEvent]]) -> list[Outcome]:
        outcomes = await runtime.notifications.submit_many(
            [item.value for item in items], [item.context for item in items]
        )
        return [outcome if isinstance(outcome, BaseException) else None for outcome in outcomes]

    async def fold_delivery(report: DeliveryReported) -> None:
        await runtime.notifications.on_delivery(report)
        await runtime.approvals.on_card_delivered(report)

    consume = CONTRACT.consume
    return [
        Durable.of(
            consume(subjects.CONSUMER_EVENTS_SUBMIT),
            batch_work=submit_events,
            linger_s=submit_linger_s,
            description="events: render and route submitted notifications",
        ),
        Durable.of(
            consume(subjects.CONSUMER_EVENTS_APPROVALS),
            work=runtime.approvals.submit,
            description="events: create approval records and queue their cards",
        ),
        Durable.of(
            consume(subjects.CONSUMER_EVENTS_EXPIRY),
            work=lambda due: runtime.approvals.expire(due.approval_id),
            description="events: apply on_timeout to approvals NATS says fell due",
            batch_size=64,
        ),
        Durable.of(
            consume(subjects.CONSUMER_EVENTS_DELIVERIES),
            work=fold_delivery,
            description="events: fold the notifier's delivery reports into event status",
            batch_size=32,
        ),
        Durable.of(
            consume(subjects.CONSUMER_EVENTS_UPDATES),
            work=runtime.updates.handle,
            description="events: button presses, replies and bot commands from Telegram",
        ),
        webhook_durable(consume(subjects.CONSUMER_EVENTS_WEBHOOKS), webhooks),
    ]


def _rpcs(runtime: Runtime) -> dict[str, RpcMethod]:
    """One method per RPC of the contract, each over the built domain services."""

    async def mode_set(request: SetModeRequest) -> ModeResult:
        digested = await runtime.modes.set(request.mode, request.changed_by, request.client_id)
        message = MODE_MESSAGES[request.mode]
        if request.client_id is None:
            message += " (the default for every client without a mode of its own)"
        return ModeResult(
            success=True,
            message=message,
            mode=request.mode,
            client_id=request.client_id,
            digested=digested,
        )

    async def quiet_hours_set(request: SetQuietHoursRequest) -> QuietHoursResult:
        return await runtime.modes.set_quiet_hours(
            request.client_id, request.quiet_hours, request.changed_by
        )

    async def templates(_request: TemplatesRequest) -> BaseModel:
        return catalogue()

    async def routes_list(_request: RouteListRequest) -> BaseModel:
        return await runtime.routes.list_rules()

    async def routes_add(request: RouteAddRequest) -> RouteRule:
        rule = request.rule
        if rule.escalate_to is not None and await runtime.routes.by_name(rule.escalate_to) is None:
            raise ApprovalError("invalid", f"escalate_to: no rule named {rule.escalate_to}")
        return await runtime.routes.add(rule, request.actor)

    async def routes_remove(request: RouteRemoveRequest) -> RouteRule:
        removed = await runtime.routes.remove(request.name, request.actor)
        if removed is None:
            raise ApprovalError("not_found", f"no route named {request.name}")
        return removed

    return {
        subjects.EVENTS_RPC_RESPONSES_LIST: runtime.responses.list,
        subjects.EVENTS_RPC_RESPONSES_PENDING: runtime.responses.pending,
        subjects.EVENTS_RPC_RESPONSES_CLEAR: runtime.responses.clear,
        subjects.EVENTS_RPC_APPROVAL_CANCEL: runtime.approvals.cancel,
        subjects.EVENTS_RPC_MODE_SET: mode_set,
        subjects.EVENTS_RPC_QUIET_HOURS_SET: quiet_hours_set,
        subjects.EVENTS_RPC_TODOS_REGISTER: runtime.tasks.register,
        subjects.EVENTS_RPC_TASK_STATUS: runtime.tasks.status,
        subjects.EVENTS_RPC_TODO: runtime.tasks.todo,
        subjects.EVENTS_RPC_TEMPLATES: templates,
        subjects.EVENTS_RPC_SESSION_CHECK: runtime.sessions.check,
        subjects.EVENTS_RPC_SESSION_RULE: runtime.sessions.add_rule,
        subjects.EVENTS_RPC_SESSION_END: runtime.sessions.end,
        subjects.EVENTS_RPC_ROUTES_LIST: routes_list,
        subjects.EVENTS_RPC_ROUTES_ADD: routes_add,
        subjects.EVENTS_RPC_ROUTES_REMOVE: routes_remove,
    }
