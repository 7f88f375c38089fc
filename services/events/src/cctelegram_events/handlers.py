"""Thin NATS adapters: decode, call the domain services in the runtime, publish or reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from faststream import AckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import ConsumerConfig
from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import CancelApprovalRequest, SubmitApproval
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_common.contracts.modes import ModeResult, SetModeRequest
from cctelegram_common.contracts.outbox import DeliveryReported
from cctelegram_common.contracts.responses import ResponsesQuery
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_common.contracts.tasks import RegisterTodosRequest, TaskStatusRequest
from cctelegram_common.contracts.tools import TemplatesRequest
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import fail, ok, settle
from cctelegram_events.approvals import ApprovalError
from cctelegram_events.modes import MODE_MESSAGES
from cctelegram_events.runtime import Runtime, RuntimeHolder
from cctelegram_events.templates import catalogue

log = get_logger(__name__)

# Streams exist already (Service.connect_forever provisions them): never let FastStream
# re-declare them with only its own subject.
EVENTS_STREAM = JStream(subjects.STREAM_EVENTS, declare=False)
DELIVERIES_STREAM = JStream(subjects.STREAM_DELIVERIES, declare=False)
UPDATES_STREAM = JStream(subjects.STREAM_UPDATES, declare=False)
RPC_QUEUE = subjects.EVENTS_RPC_SERVICE


def _durable(max_deliver: int = 50) -> ConsumerConfig:
    return ConsumerConfig(ack_wait=30, max_deliver=max_deliver)


async def _answer(
    holder: RuntimeHolder, method: str, call: Callable[[Runtime], Awaitable[BaseModel]]
) -> RpcReply:
    """Run one RPC method and wrap its result (or its refusal) in the RpcReply envelope."""
    if not holder.ready:
        return fail("unavailable", "events service is starting")
    try:
        return ok(await call(holder.get()))
    except ApprovalError as error:
        return fail(error.code, error.message)
    except Exception as error:
        log.exception("rpc_failed", method=method, error=type(error).__name__)
        return fail("internal", f"{method} failed")


def register(broker: NatsBroker, holder: RuntimeHolder) -> None:
    """Attach every subscriber of the events service to ``broker``."""

    @broker.subscriber(
        subjects.EVENT_SUBMIT,
        stream=EVENTS_STREAM,
        durable=subjects.CONSUMER_EVENTS_SUBMIT,
        pull_sub=PullSub(batch_size=16, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.MANUAL,
        title="events-submit",
        description="Render and route submitted notifications",
    )
    async def on_submit(event: SubmitEvent, message: NatsMessage) -> None:
        await settle(message, lambda: holder.get().notifications.submit(event))

    @broker.subscriber(
        subjects.APPROVAL_SUBMIT,
        stream=EVENTS_STREAM,
        durable=subjects.CONSUMER_EVENTS_APPROVALS,
        pull_sub=PullSub(batch_size=16, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.MANUAL,
        title="events-approvals",
        description="Create approval records and queue their cards",
    )
    async def on_approval(command: SubmitApproval, message: NatsMessage) -> None:
        await settle(message, lambda: holder.get().approvals.submit(command))

    @broker.subscriber(
        subjects.DELIVERY_REPORTED,
        stream=DELIVERIES_STREAM,
        durable=subjects.CONSUMER_EVENTS_DELIVERIES,
        pull_sub=PullSub(batch_size=32, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.MANUAL,
        title="events-deliveries",
        description="Fold the notifier's delivery reports into event status",
    )
    async def on_delivery(report: DeliveryReported, message: NatsMessage) -> None:
        async def fold() -> None:
            runtime = holder.get()
            await runtime.notifications.on_delivery(report)
            await runtime.approvals.on_card_delivered(report)

        await settle(message, fold)

    @broker.subscriber(
        subjects.TELEGRAM_UPDATES,
        stream=UPDATES_STREAM,
        durable=subjects.CONSUMER_EVENTS_UPDATES,
        pull_sub=PullSub(batch_size=16, timeout=5.0),
        config=_durable(),
        ack_policy=AckPolicy.MANUAL,
        title="events-updates",
        description="Button presses, replies and bot commands from Telegram",
    )
    async def on_update(inbound: InboundUpdate, message: NatsMessage) -> None:
        await settle(message, lambda: holder.get().updates.handle(inbound))

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
            state = await runtime.modes.set(request.mode, request.changed_by)
            return ModeResult(success=True, message=MODE_MESSAGES[state.mode], mode=state.mode)

        return await _answer(holder, "mode_set", call)

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
