"""``CCTG_TEST_NATS=container``: the repo-wide ``nats_url`` fixture runs nats-server from the
suite's NATS image through testcontainers (``make test-images`` sets it)."""

from __future__ import annotations

import os

import docker
import nats
import pytest


@pytest.mark.skipif(
    os.environ.get("CCTG_TEST_NATS") != "container", reason="CCTG_TEST_NATS=container not set"
)
async def test_the_nats_fixture_runs_in_a_container(nats_url: str) -> None:
    port = nats_url.rsplit(":", 1)[1]
    client = docker.from_env()
    try:
        running = [
            container
            for container in client.containers.list()
            if container.image.tags
            and container.image.tags[0].startswith("cctelegram/nats:")
            and port in container.attrs["Args"]
        ]
    finally:
        client.close()
    assert len(running) == 1, "the fixture's server is a container of the NATS image"
    assert running[0].attrs["HostConfig"]["ReadonlyRootfs"] is True
    connection = await nats.connect(nats_url)
    try:
        stream = await connection.jetstream().add_stream(name="FIXTURE_PROBE", subjects=["probe.>"])
        assert stream.config.name == "FIXTURE_PROBE"
    finally:
        await connection.close()
