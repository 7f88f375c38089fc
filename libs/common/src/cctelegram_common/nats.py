"""The NATS connection: a FastStream ``NatsBroker`` with the suite's middlewares, and RPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.nats import NatsBroker
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.nats.security import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsToken,
    NatsUserPassword,
)
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from cctelegram_common.contracts.rpc import RpcError, RpcReply
from cctelegram_common.logging import get_logger
from cctelegram_common.metrics import registry
from cctelegram_common.resilience import backoff_delay
from cctelegram_common.settings import NatsSettings
from cctelegram_common.subjects import HEADER_REQUEST_ID

ModelT = TypeVar("ModelT", bound=BaseModel)
_log = get_logger(__name__)


class LogContextMiddleware(BaseMiddleware[Any, Any]):
    """Every log line written while a message is handled carries its correlation and request
    ids; messages published meanwhile carry the request id on."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        context: dict[str, Any] = {"correlation_id": msg.correlation_id}
        request_id = (msg.headers or {}).get(HEADER_REQUEST_ID)
        if request_id:
            context["request_id"] = request_id
        with structlog.contextvars.bound_contextvars(**context):
            return await call_next(msg)

    async def publish_scope(self, call_next: Callable[[Any], Awaitable[Any]], cmd: Any) -> Any:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        headers = getattr(cmd, "headers", None)
        if request_id and isinstance(headers, dict):
            headers.setdefault(HEADER_REQUEST_ID, request_id)
        return await call_next(cmd)


class SuiteNatsBroker(NatsBroker):
    """FastStream's broker, except that pull subscribers receive their messages under the
    connection's inbox prefix. FastStream defaults them to ``_INBOX.`` whatever the
    connection uses, which a least-privilege NATS user (allowed only its own prefix) may
    not subscribe to."""

    pull_inbox_prefix: bytes = b"_INBOX."

    def subscriber(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("inbox_prefix", self.pull_inbox_prefix)
        return super().subscriber(*args, **kwargs)


def _security(settings: NatsSettings) -> NatsSecurity | None:
    if settings.creds_file is not None:
        return NatsCredentials(str(settings.creds_file))
    if settings.nkey_seed_file is not None:
        return NatsNKey.from_file(str(settings.nkey_seed_file))
    if settings.user and settings.password is not None:
        return NatsUserPassword(settings.user, settings.password.get_secret_value())
    if settings.token is not None:
        return NatsToken(settings.token.get_secret_value())
    return None


def build_broker(
    settings: NatsSettings,
    service: str,
    tracer_provider: TracerProvider | None = None,
    graceful_timeout_s: float = 10.0,
    error_cb: Callable[[Exception], Awaitable[None]] | None = None,
) -> NatsBroker:
    """A broker that reconnects forever, traces across messages and counts them."""
    middlewares: list[Any] = [
        LogContextMiddleware,
        NatsPrometheusMiddleware(registry=registry, app_name=service),
    ]
    if tracer_provider is not None:
        middlewares.insert(0, NatsTelemetryMiddleware(tracer_provider=tracer_provider))
    broker = SuiteNatsBroker(
        servers=settings.urls,
        name=f"cctelegram-{service}",
        security=_security(settings),
        inbox_prefix=settings.inbox_prefix.encode(),
        connect_timeout=max(1, int(settings.connect_timeout_s)),
        reconnect_time_wait=max(1, int(settings.reconnect_wait_s)),
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        middlewares=middlewares,
        graceful_timeout=graceful_timeout_s,
        error_cb=error_cb,
        log_level=10,
    )
    broker.pull_inbox_prefix = f"{settings.inbox_prefix}.".encode()
    return broker


def jetstream(broker: NatsBroker) -> JetStreamContext:
    """The JetStream context of a connected broker."""
    context: JetStreamContext = broker.config.connection_state.stream
    return context


class RpcFailedError(Exception):
    """The remote side answered with an error (``error``), or did not answer at all."""

    def __init__(self, error: RpcError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def ok(result: BaseModel) -> RpcReply:
    """The reply of a successful RPC."""
    return RpcReply(ok=True, result=result.model_dump(mode="json"))


def fail(code: str, message: str, field: str | None = None) -> RpcReply:
    """The reply of a failed RPC, in words a caller can show."""
    return RpcReply(ok=False, error=RpcError(code=code, message=message, field=field))


async def rpc_call(
    broker: NatsBroker,
    subject: str,
    request: BaseModel,
    response_model: type[ModelT],
    *,
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> ModelT:
    """Request-reply with the ``RpcReply`` envelope; raises ``RpcFailedError`` on error."""
    try:
        message = await broker.request(request, subject, headers=headers, timeout=timeout_s)
    except TimeoutError:
        raise RpcFailedError(
            RpcError(code="unavailable", message=f"no answer on {subject} in {timeout_s}s")
        ) from None
    except Exception as error:  # no responders, connection closed, ...
        raise RpcFailedError(
            RpcError(code="unavailable", message=f"{subject}: {type(error).__name__}")
        ) from None
    reply = RpcReply.model_validate_json(message.body)
    if not reply.ok or reply.result is None:
        raise RpcFailedError(reply.error or RpcError(code="internal", message="empty reply"))
    return response_model.model_validate(reply.result)


async def settle(
    message: Any,
    work: Callable[[], Awaitable[object]],
    *,
    base_delay_s: float = 0.5,
    max_delay_s: float = 30.0,
) -> None:
    """Ack ``message`` once ``work`` succeeded; on failure hand it back *with a delay*.

    FastStream's NACK_ON_ERROR redelivers at once, so a dependency that is down for a few
    seconds (a JetStream leader election) burns through MaxDeliver in a blink and the
    message is never processed again. Here every retry waits longer (jittered, capped).
    Use with ``ack_policy=AckPolicy.MANUAL`` and a ``message: NatsMessage`` parameter.
    """
    try:
        await work()
    except Exception as error:
        metadata = getattr(message.raw_message, "metadata", None)
        delivered = int(getattr(metadata, "num_delivered", 1) or 1)
        delay = max(base_delay_s, backoff_delay(delivered + 1, base_delay_s, max_delay_s))
        _log.warning(
            "handler_failed_retrying",
            error=f"{type(error).__name__}: {error}"[:300],
            delivered=delivered,
            retry_in_s=round(delay, 2),
        )
        await message.nack(delay=delay)
        return
    await message.ack()
