"""Thin NATS adapters: decode, call the domain services in the runtime, publish or reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.nats import NatsBroker
from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.consumers import BatchItem, Durable, Outcome
from cctelegram_common.contracts.approvals import (
    ApprovalDue,
    CancelApprovalRequest,
    SubmitApproval,
)
from cctelegram_common.contracts.claude_code import (
    SessionCheckRequest,
    SessionEndRequest,
    SessionRuleRequest,
)
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import (
    ModeResult,
    QuietHoursResult,
    SetModeRequest,
    SetQuietHoursRequest,
)
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_common.contracts.responses import ResponsesQuery
from cctelegram_common.contracts.routing import (
    RouteAddRequest,
    RouteListRequest,
    RouteRemoveRequest,
    RouteRule,
)
from cctelegram_common.contracts.rpc import RpcError, RpcReply
from cctelegram_common.contracts.tasks import RegisterTodosRequest, TaskStatusRequest
from cctelegram_common.contracts.tools import TemplatesRequest
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import RpcResponder, fail
from cctelegram_events.approval_rules import ApprovalError
from cctelegram_events.modes import MODE_MESSAGES
from cctelegram_events.runtime import Runtime, RuntimeHolder
from cctelegram_events.templates import catalogue

log = get_logger(__name__)

RPC_QUEUE = subjects.EVENTS_RPC_SERVICE


def _refusal(error: Exception) -> RpcError | None:
    if isinstance(error, ApprovalError):
        return RpcError(code=error.code, message=error.message)
    return None


_RESPONDER = RpcResponder(refusal=_refusal, internal_message=lambda method, _: f"{method} failed")


async def _answer(
    holder: RuntimeHolder, method: str, call: Callable[[Runtime], Awaitable[BaseModel]]
) -> RpcReply:
    """Run one RPC method and wrap its result (or its refusal) in the RpcReply envelope."""
    if not holder.ready:
        return fail("unavailable", "events service is starting")
    return await _RESPONDER.run(method, lambda: call(holder.get()))


def durables(holder: RuntimeHolder, submit_linger_s: float = 0.0) -> list[Durable[Any]]:
    """The durable consumers of the events service: stored commands and reports it works on.

    ``submit_linger_s``: see ``EventsSettings.submit_linger_ms`` (measured with
    bench/gateway.py: ~10 % less events CPU and ~25 % less nats-server CPU per event at
    peak, for at most that much added latency while events arrive back to back).
    """

    async def submit_events(items: Sequence[BatchItem[SubmitEvent]]) -> list[Outcome]:
        outcomes = await holder.get().notifications.submit_many(
            [item.value for item in items], [item.context for item in items]
        )
        return [outcome if isinstance(outcome, BaseException) else None for outcome in outcomes]

    async def fold_delivery(report: DeliveryReported) -> None:
        runtime = holder.get()
        await runtime.notifications.on_delivery(report)
        await runtime.approvals.on_card_delivered(report)

    return [
        Durable(
            stream=subjects.STREAM_EVENTS,
            subject=subjects.EVENT_SUBMIT,
            name=subjects.CONSUMER_EVENTS_SUBMIT,
            model=SubmitEvent,
            batch_work=submit_events,
            linger_s=submit_linger_s,
            description="events: render and route submitted notifications",
        ),
        Durable(
            stream=subjects.STREAM_EVENTS,
            subject=subjects.APPROVAL_SUBMIT,
            name=subjects.CONSUMER_EVENTS_APPROVALS,
            model=SubmitApproval,
            work=lambda command: holder.get().approvals.submit(command),
            description="events: create approval records and queue their cards",
        ),
        Durable(
            stream=subjects.STREAM_APPROVAL_DUE,
            subject=subjects.APPROVAL_TIMEOUT_ALL,
            name=subjects.CONSUMER_EVENTS_EXPIRY,
            model=ApprovalDue,
            work=lambda due: holder.get().approvals.expire(due.approval_id),
            description="events: apply on_timeout to approvals NATS says fell due",
            batch_size=64,
        ),
        Durable(
            stream=subjects.STREAM_DELIVERIES,
            subject=subjects.DELIVERY_REPORTED,
            name=subjects.CONSUMER_EVENTS_DELIVERIES,
            model=DeliveryReported,
            work=fold_delivery,
            description="events: fold the notifier's delivery reports into event status",
            batch_size=32,
        ),
        Durable(
            stream=subjects.STREAM_UPDATES,
            subject=subjects.TELEGRAM_UPDATES,
            name=subjects.CONSUMER_EVENTS_UPDATES,
            model=InboundUpdate,
            work=lambda inbound: holder.get().updates.handle(inbound),
            description="events: button presses, replies and bot commands from Telegram",
        ),
    ]


def register(broker: NatsBroker, holder: RuntimeHolder) -> None:
    """Attach the request-reply handlers of the events service to ``broker``."""

    # --- RPC ---------------------------------------------------------------------------------
    @broker.subscriber(subjects.EVENTS_RPC_RESPONSES_LIST, queue=RPC_QUEUE)
    async def responses_list(query: ResponsesQuery) -> RpcReply:
        return await _answer(holder, "responses_list", lambda rt: rt.responses.list(query))

    @broker.subscriber(subjects.EVENTS_RPC_RESPONSES_PENDING, queue=RPC_QUEUE)
    async def responses_pending(query: ResponsesQuery) -> RpcReply:
        return await _answer(holder, "responses_pending", lambda rt: rt.responses.pending(query))

    @broker.subscriber(subjects.EVENTS_RPC_RESPONSES_CLEAR, queue=RPC_QUEUE)
    async def responses_clear(query: ResponsesQuery) -> RpcReply:
        return await _answer(holder, "responses_clear", lambda rt: rt.responses.clear(query))

    @broker.subscriber(subjects.EVENTS_RPC_APPROVAL_CANCEL, queue=RPC_QUEUE)
    async def approval_cancel(request: CancelApprovalRequest) -> RpcReply:
        return await _answer(holder, "approval_cancel", lambda rt: rt.approvals.cancel(request))

    @broker.subscriber(subjects.EVENTS_RPC_MODE_SET, queue=RPC_QUEUE)
    async def mode_set(request: SetModeRequest) -> RpcReply:
        async def call(runtime: Runtime) -> ModeResult:
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

        return await _answer(holder, "mode_set", call)

    @broker.subscriber(subjects.EVENTS_RPC_QUIET_HOURS_SET, queue=RPC_QUEUE)
    async def quiet_hours_set(request: SetQuietHoursRequest) -> RpcReply:
        async def call(runtime: Runtime) -> QuietHoursResult:
            return await runtime.modes.set_quiet_hours(
                request.client_id, request.quiet_hours, request.changed_by
            )

        return await _answer(holder, "quiet_hours_set", call)

    @broker.subscriber(subjects.EVENTS_RPC_TODOS_REGISTER, queue=RPC_QUEUE)
    async def todos_register(request: RegisterTodosRequest) -> RpcReply:
        return await _answer(holder, "todos_register", lambda rt: rt.tasks.register(request))

    @broker.subscriber(subjects.EVENTS_RPC_TASK_STATUS, queue=RPC_QUEUE)
    async def task_status(request: TaskStatusRequest) -> RpcReply:
        return await _answer(holder, "task_status", lambda rt: rt.tasks.status(request))

    @broker.subscriber(subjects.EVENTS_RPC_TODO, queue=RPC_QUEUE)
    async def todo(request: TaskStatusRequest) -> RpcReply:
        return await _answer(holder, "todo", lambda rt: rt.tasks.todo(request))

    @broker.subscriber(subjects.EVENTS_RPC_TEMPLATES, queue=RPC_QUEUE)
    async def templates(_request: TemplatesRequest) -> RpcReply:
        async def call(_runtime: Runtime) -> BaseModel:
            return catalogue()

        return await _answer(holder, "templates", call)

    @broker.subscriber(subjects.EVENTS_RPC_SESSION_CHECK, queue=RPC_QUEUE)
    async def session_check(request: SessionCheckRequest) -> RpcReply:
        return await _answer(holder, "session_check", lambda rt: rt.sessions.check(request))

    @broker.subscriber(subjects.EVENTS_RPC_SESSION_RULE, queue=RPC_QUEUE)
    async def session_rule(request: SessionRuleRequest) -> RpcReply:
        return await _answer(holder, "session_rule", lambda rt: rt.sessions.add_rule(request))

    @broker.subscriber(subjects.EVENTS_RPC_SESSION_END, queue=RPC_QUEUE)
    async def session_end(request: SessionEndRequest) -> RpcReply:
        return await _answer(holder, "session_end", lambda rt: rt.sessions.end(request))

    @broker.subscriber(subjects.EVENTS_RPC_ROUTES_LIST, queue=RPC_QUEUE)
    async def routes_list(_request: RouteListRequest) -> RpcReply:
        return await _answer(holder, "routes_list", lambda rt: rt.routes.list_rules())

    @broker.subscriber(subjects.EVENTS_RPC_ROUTES_ADD, queue=RPC_QUEUE)
    async def routes_add(request: RouteAddRequest) -> RpcReply:
        async def call(runtime: Runtime) -> RouteRule:
            rule = request.rule
            if (
                rule.escalate_to is not None
                and await runtime.routes.by_name(rule.escalate_to) is None
            ):
                raise ApprovalError("invalid", f"escalate_to: no rule named {rule.escalate_to}")
            return await runtime.routes.add(rule, request.actor)

        return await _answer(holder, "routes_add", call)

    @broker.subscriber(subjects.EVENTS_RPC_ROUTES_REMOVE, queue=RPC_QUEUE)
    async def routes_remove(request: RouteRemoveRequest) -> RpcReply:
        async def call(runtime: Runtime) -> RouteRule:
            removed = await runtime.routes.remove(request.name, request.actor)
            if removed is None:
                raise ApprovalError("not_found", f"no route named {request.name}")
            return removed

        return await _answer(holder, "routes_remove", call)
