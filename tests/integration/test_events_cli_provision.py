"""`cctelegram provision` (the CLI) upgrades a store the events service wrote in its previous
layout (moved from the events tests: it runs the CLI; the old-layout helpers stay there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nats
from nats.js.api import KeyValueConfig, StorageType
from test_approvals_at_scale import assert_upgraded, write_old_store

from cctelegram_common import subjects
from cctelegram_testing.nats import NatsServer


def cli_provision(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cctelegram_cli", "provision", "--nats-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


async def test_cctelegram_provision_upgrades_a_store_written_by_the_old_layout(
    tmp_path: Path,
) -> None:
    with NatsServer(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        records = await write_old_store(js, soon_s=600)
        week_s = 7 * 86400.0
        await js.create_key_value(
            KeyValueConfig(bucket=subjects.KV_EVENT_STATUS, ttl=week_s, storage=StorageType.FILE)
        )
        assert subjects.STREAM_APPROVAL_DUE in cli_provision(server.url)
        await assert_upgraded(js, records, ("open_soon", "open_later"))
        # The history time (30 days by default) replaces the old layout's 7-day max age.
        status = await js.stream_info(f"KV_{subjects.KV_EVENT_STATUS}")
        assert status.config.max_age == 30 * 86400.0
        # Idempotent: a second run (or a service's own provisioning) changes nothing.
        assert "nothing to do" in cli_provision(server.url)
        await assert_upgraded(js, records, ("open_soon", "open_later"))
        await nc.close()
