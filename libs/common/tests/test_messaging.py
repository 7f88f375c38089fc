"""Contracts: bindings must serve exactly what is declared; channels merge across services."""

from __future__ import annotations

import pytest

from cctelegram_common.catalog import channels
from cctelegram_common.consumers import Durable
from cctelegram_common.contracts.auth import KeyChanged, VerifyRequest, VerifyResponse
from cctelegram_common.messaging import (
    Bindings,
    Consume,
    ContractError,
    Listen,
    Publish,
    Rpc,
    ServiceContract,
)

VERIFY = Rpc("x.rpc.verify", VerifyRequest, VerifyResponse, ("caller",), "verify")
CHANGED = Listen("x.changed", KeyChanged, ("owner",), "changed")
QUEUE = Consume("svc-work", "STREAM", "x.work", KeyChanged, ("owner",), "work")
CONTRACT = ServiceContract("svc", "svc", rpcs=(VERIFY,), consumes=(QUEUE,), listens=(CHANGED,))


async def _verify(_request: VerifyRequest) -> VerifyResponse:
    raise NotImplementedError


async def _hear(_change: KeyChanged) -> None:
    return None


def test_bindings_that_serve_the_contract_pass() -> None:
    Bindings(
        rpcs={VERIFY.subject: _verify},
        durables=[Durable.of(QUEUE, work=_hear)],
        listeners={CHANGED.subject: _hear},
    ).check(CONTRACT)


@pytest.mark.parametrize(
    ("bindings", "problem"),
    [
        (
            Bindings(durables=[Durable.of(QUEUE, work=_hear)], listeners={"x.changed": _hear}),
            "RPCs declared but not bound",
        ),
        (
            Bindings(
                rpcs={VERIFY.subject: _verify, "x.rpc.extra": _verify},
                durables=[Durable.of(QUEUE, work=_hear)],
                listeners={CHANGED.subject: _hear},
            ),
            "RPCs bound but not declared",
        ),
        (
            Bindings(rpcs={VERIFY.subject: _verify}, listeners={"x.changed": _hear}),
            "durables declared",
        ),
    ],
)
def test_bindings_that_differ_from_the_contract_are_refused(
    bindings: Bindings, problem: str
) -> None:
    with pytest.raises(ContractError, match=problem):
        bindings.check(CONTRACT)


def test_a_subject_two_services_declare_is_one_channel_with_both_sides() -> None:
    sender = ServiceContract(
        "sender", publishes=(Publish(CHANGED.subject, KeyChanged, "broadcast", "sent"),)
    )
    merged = {channel.subject: channel for channel in channels([CONTRACT, sender])}
    assert merged[CHANGED.subject].publishers == ("owner", "sender")
    assert merged[CHANGED.subject].consumers == ("svc",)
    assert merged[CHANGED.subject].description == "changed"  # the consuming side's words
    assert merged[VERIFY.subject].reply is VerifyResponse
    assert merged[QUEUE.subject].stream == "STREAM"
