"""The common broker against a real nats-server: request ids follow messages, RPC envelopes."""

import asyncio
import uuid

import pytest
import structlog
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel

from cctelegram_common.nats import RpcFailedError, build_broker, fail, ok, rpc_call
from cctelegram_common.settings import NatsSettings


class Ping(BaseModel):
    text: str


async def test_request_id_is_in_log_context_and_carried_on_publish(nats_url: str) -> None:
    broker = build_broker(NatsSettings(urls=[nats_url]), "test")
    first, second = f"test.{uuid.uuid4().hex}.a", f"test.{uuid.uuid4().hex}.b"
    seen: dict[str, object] = {}
    relayed: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    @broker.subscriber(first)
    async def relay(body: Ping) -> None:
        seen.update(structlog.contextvars.get_contextvars())
        await broker.publish(body, second)

    @broker.subscriber(second)
    async def sink(body: Ping, message: NatsMessage) -> None:
        if not relayed.done():
            relayed.set_result(dict(message.headers or {}))

    async with broker:
        await broker.start()
        await broker.publish(Ping(text="hi"), first, headers={"X-Request-Id": "req-123"})
        headers = await asyncio.wait_for(relayed, 10)
    assert seen["request_id"] == "req-123"
    assert seen["correlation_id"]
    assert headers.get("X-Request-Id") == "req-123"


async def test_rpc_envelope_ok_fail_and_no_responder(nats_url: str) -> None:
    broker = build_broker(NatsSettings(urls=[nats_url]), "test")
    subject = f"cctg.test.rpc.{uuid.uuid4().hex}"

    @broker.subscriber(subject)
    async def answer(body: Ping) -> object:
        if body.text == "bad":
            return fail("invalid", "text must not be bad", field="text")
        return ok(Ping(text=body.text.upper()))

    async with broker:
        await broker.start()
        assert (await rpc_call(broker, subject, Ping(text="hi"), Ping)).text == "HI"
        with pytest.raises(RpcFailedError) as failed:
            await rpc_call(broker, subject, Ping(text="bad"), Ping)
        assert failed.value.error.field == "text"
        with pytest.raises(RpcFailedError) as unanswered:
            await rpc_call(broker, subject + ".nobody", Ping(text="x"), Ping, timeout_s=0.5)
        assert unanswered.value.error.code == "unavailable"
