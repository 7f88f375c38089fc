"""Signed callback_data: fits 64 bytes, verifies, and refuses anything altered or forged."""

from __future__ import annotations

import uuid

import pytest
from events_harness import FakeKv

from cctelegram_events.callbacks import CallbackSigner, shared_secret


def test_callback_data_fits_and_round_trips() -> None:
    signer = CallbackSigner(b"k" * 32)
    approval_id = uuid.uuid4().hex
    for index in range(10):
        data = signer.sign(approval_id, index)
        assert len(data.encode()) <= 64
        assert signer.verify(data) == (approval_id, index)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d[:33] + ("1" if d[33] != "1" else "2") + d[34:],  # another option
        lambda d: ("f" if d[0] != "f" else "e") + d[1:],  # another approval
        lambda d: d[:-1] + ("A" if d[-1] != "A" else "B"),  # another MAC
        lambda d: d.split(".")[0] + ".0",  # no MAC
        lambda d: "approve_task-1",  # the original's unsigned format
        lambda d: "",
    ],
)
def test_altered_or_forged_data_is_refused(tamper: object) -> None:
    signer = CallbackSigner(b"k" * 32)
    data = signer.sign(uuid.uuid4().hex, 0)
    assert signer.verify(tamper(data)) is None  # type: ignore[operator]


def test_another_secret_does_not_verify() -> None:
    data = CallbackSigner(b"a" * 32).sign(uuid.uuid4().hex, 1)
    assert CallbackSigner(b"b" * 32).verify(data) is None


async def test_generated_secret_is_shared_by_replicas() -> None:
    state = FakeKv()
    first = await shared_secret(state, None)
    second = await shared_secret(state, None)
    assert first == second
    assert len(first) >= 32
    assert await shared_secret(state, b"configured-secret-123") == b"configured-secret-123"
