"""The one RPC envelope every service answers with (``RpcResponder``), and its closed set of
refusal codes."""

from __future__ import annotations

import uuid
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

from cctelegram_common.contracts.rpc import REFUSAL_CODES, RefusalCode, RpcError, RpcReply
from cctelegram_common.nats import (
    RpcFailedError,
    RpcRefusedError,
    RpcResponder,
    build_broker,
    current_message,
    rpc_call,
)
from cctelegram_common.settings import NatsSettings


class Greeting(BaseModel):
    name: str
    times: int = 1


class KeyMissingError(Exception):
    pass


def _refusal(error: Exception) -> RpcError | None:
    if isinstance(error, KeyMissingError):
        return RpcError(code="not_found", message="no such key", field="key_id")
    return None


async def _greet(raw: bytes) -> RpcReply:
    async def method(request: Greeting) -> BaseModel:
        if request.name == "missing":
            raise KeyMissingError
        if request.name == "refused":
            raise RpcRefusedError("conflict", "already greeted")
        if request.name == "boom":
            raise RuntimeError("a bug")
        return Greeting(name=request.name.upper(), times=request.times)

    responder = RpcResponder(
        refusal=_refusal,
        internal_message=lambda name, error: f"{name} could not do this: {type(error).__name__}",
    )
    return await responder.request(raw, Greeting, method)


async def test_ok_wraps_the_result() -> None:
    reply = await _greet(b'{"name": "ann"}')
    assert reply == RpcReply(ok=True, result={"name": "ANN", "times": 1})


async def test_a_malformed_request_is_invalid_naming_its_field() -> None:
    reply = await _greet(b'{"name": "ann", "times": "many"}')
    assert not reply.ok
    assert reply.error is not None
    assert (reply.error.code, reply.error.field) == ("invalid", "times")


async def test_an_empty_body_is_an_empty_object() -> None:
    reply = await _greet(b"")
    assert reply.error == RpcError(code="invalid", message="Field required", field="name")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing", RpcError(code="not_found", message="no such key", field="key_id")),
        ("refused", RpcError(code="conflict", message="already greeted")),
        ("boom", RpcError(code="internal", message="Greeting could not do this: RuntimeError")),
    ],
)
async def test_refusals_and_bugs_become_the_envelope(name: str, expected: RpcError) -> None:
    reply = await _greet(f'{{"name": "{name}"}}'.encode())
    assert reply == RpcReply(ok=False, error=expected)


def test_refusal_codes_are_a_closed_set() -> None:
    assert set(get_args(RefusalCode)) == REFUSAL_CODES == {
        "invalid", "not_found", "forbidden", "conflict", "unavailable", "internal",
    }  # fmt: skip
    with pytest.raises(ValidationError):
        RpcError.model_validate({"code": "nope", "message": "x"})


async def test_over_nats_and_a_reply_outside_the_set_is_internal(nats_url: str) -> None:
    broker = build_broker(NatsSettings(urls=[nats_url]), "test")
    subject = f"cctg.test.rpc.{uuid.uuid4().hex}"

    @broker.subscriber(subject)
    async def greet(_body: object) -> RpcReply:
        return await _greet(current_message(broker).body)

    @broker.subscriber(subject + ".odd")
    async def odd(_body: object) -> dict[str, object]:
        return {"ok": False, "error": {"code": "teapot", "message": "?"}}

    async with broker:
        await broker.start()
        assert (await rpc_call(broker, subject, Greeting(name="x"), Greeting)).name == "X"
        with pytest.raises(RpcFailedError) as missing:
            await rpc_call(broker, subject, Greeting(name="missing"), Greeting)
        assert missing.value.error.code == "not_found"
        with pytest.raises(RpcFailedError) as odd_reply:
            await rpc_call(broker, subject + ".odd", Greeting(name="x"), Greeting)
        assert odd_reply.value.error.code == "internal"
