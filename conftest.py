"""Repo-wide pytest fixtures: a real nats-server per test session (or CCTELEGRAM_TEST_NATS_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cctelegram_testing.nats import NatsServer


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server on a free loopback port with a temp store, for the whole session.

    Set ``CCTELEGRAM_TEST_NATS_URL`` to point the tests at an existing server instead.
    Tests isolate themselves by purging or by unique subjects/ids, not by fresh servers.
    """
    existing = os.environ.get("CCTELEGRAM_TEST_NATS_URL")
    if existing:
        yield existing
        return
    store = Path(tmp_path_factory.mktemp("nats-store"))
    with NatsServer(store) as server:
        yield server.url


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test's own, for tests that kill or restart it."""
    with NatsServer(tmp_path / "nats-store") as server:
        yield server
