"""Repo-wide pytest fixtures: a real nats-server per test session (or CCTELEGRAM_TEST_NATS_URL,
or with CCTG_TEST_NATS=container the suite's NATS image through testcontainers)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cctelegram_testing.nats import NatsServer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def nats_container() -> Iterator[str]:
    """nats-server with JetStream from the suite's NATS image (``make images``), started with
    testcontainers on the host network, read-only with a tmpfs store; yields its URL."""
    import urllib.request

    from testcontainers.core.container import DockerContainer

    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # its image needs a registry
    image = os.environ.get("CCTG_TEST_NATS_IMAGE", "cctelegram/nats:dev")
    port, monitor = _free_port(), _free_port()
    health = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
    store = "/tmp/jetstream"  # noqa: S108 - on the container's own tmpfs
    container = (
        DockerContainer(image)
        .with_command(["-js", "-sd", store, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor)])
        .with_env("CCTELEGRAM_HEALTH_URL", health)
        .with_tmpfs_mount("/tmp")  # noqa: S108
        .with_kwargs(network_mode="host", read_only=True, cap_drop=["ALL"])
    )
    container.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(health, timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"nats://127.0.0.1:{port}"
    finally:
        container.stop()


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A JetStream server on a free loopback port with a temp store, for the whole session.

    Set ``CCTELEGRAM_TEST_NATS_URL`` to point the tests at an existing server instead, or
    ``CCTG_TEST_NATS=container`` to run it from the NATS image through testcontainers
    (needs a Docker engine at DOCKER_HOST and ``make images``; ``fresh_nats`` stays local).
    Tests isolate themselves by purging or by unique subjects/ids, not by fresh servers.
    """
    existing = os.environ.get("CCTELEGRAM_TEST_NATS_URL")
    if existing:
        yield existing
        return
    if os.environ.get("CCTG_TEST_NATS") == "container":
        with nats_container() as url:
            yield url
        return
    store = Path(tmp_path_factory.mktemp("nats-store"))
    with NatsServer(store) as server:
        yield server.url


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of this test's own, for tests that kill or restart it."""
    with NatsServer(tmp_path / "nats-store") as server:
        yield server
