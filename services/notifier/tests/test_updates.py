"""Inbound updates: long polling into the updates stream (dedup ids, offset in KV), membership
changes, webhook registration, and exactly one poller among replicas."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from cctelegram_common import files, streams, subjects
from cctelegram_common.contracts.updates import InboundUpdate, update_msg_id
from cctelegram_notifier.store import chat_key
from cctelegram_testing.nats import NatsServer
from cctelegram_testing.notifier import (
    NotifierProcess,
    sandbox_calls,
    stream_contracts,
    wait_until,
)
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

FAST_LEASE = {"lease_ttl_s": 3.0, "lease_check_s": 0.2, "timeout_s": 1.0}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(rate_scale=10.0) as running:
        yield running


async def _updates(nc: Client) -> list[InboundUpdate]:
    return await stream_contracts(nc, subjects.STREAM_UPDATES, InboundUpdate)


async def test_polled_updates_are_stored_once_with_offset_and_membership_tracked(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chat = sandbox.create_chat(type="private", user={"id": 777, "first_name": "Ann"})["id"]
    runtime = await start_notifier(
        make_settings(sandbox, instance_id="solo", polling={"enabled": True, **FAST_LEASE})
    )
    for index in range(5):
        sandbox.write(chat, f"hello {index}")

    async def five() -> bool:
        return len(await _updates(nc)) == 5

    await wait_until(five)
    updates = await _updates(nc)
    assert [u.update["message"]["text"] for u in updates] == [f"hello {i}" for i in range(5)]
    js = nc.jetstream()
    stored = await js.get_msg(
        subjects.STREAM_UPDATES, (await js.stream_info(subjects.STREAM_UPDATES)).state.first_seq
    )
    assert stored.headers[subjects.HEADER_MSG_ID] == update_msg_id(updates[0].update_id)
    bridge = await js.key_value(subjects.KV_BRIDGE)
    assert (await bridge.get(subjects.BRIDGE_KEY_POLLER_LEASE)).value == b"solo"

    async def offset_saved() -> bool:
        entry = await bridge.get(subjects.BRIDGE_KEY_POLLER_OFFSET)
        return int(entry.value) == updates[-1].update_id + 1

    await wait_until(offset_saved)
    assert runtime.heartbeat().poller

    # The person blocks the bot: the chat is marked inactive; unblocking clears it.
    deliveries = await js.key_value(subjects.KV_DELIVERIES)
    sandbox.set_state(chat, "blocked")

    async def marked() -> bool:
        try:
            return bool((await deliveries.get(chat_key(chat, "inactive"))).value)
        except nats.js.errors.KeyNotFoundError:
            return False

    await wait_until(marked)
    sandbox.set_state(chat, "active")
    await wait_until(lambda: _not(marked))
    # Re-polling never stores an update twice (JetStream dedup by Nats-Msg-Id).
    assert len({u.update_id for u in await _updates(nc)}) == len(await _updates(nc))


async def _not(predicate: Any) -> bool:
    return not await predicate()


async def test_webhook_mode_registers_the_webhook_and_never_polls(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    await start_notifier(
        make_settings(
            sandbox,
            polling={"enabled": True, **FAST_LEASE},
            webhook={"url": "http://127.0.0.1:9/telegram/webhook", "secret_token": "s3cr3t-hook"},
        )
    )

    def registered() -> bool:
        webhook = sandbox.api("GET", "/bot")["webhook"]
        return bool(webhook) and webhook["url"].endswith("/telegram/webhook")

    await wait_until(registered)
    await asyncio.sleep(0.5)
    assert sandbox_calls(sandbox, "getUpdates") == []


def _writer(sandbox: RunningSandbox, chat: int, count: int, stop: threading.Event) -> list[int]:
    written: list[int] = []
    for index in range(count):
        if stop.is_set():
            break
        written.append(sandbox.write(chat, f"u{index}")["update_id"])
        time.sleep(0.05)
    return written


@pytest.mark.slow
async def test_two_replicas_one_poller_takeover_after_kill_nothing_lost_or_doubled(
    fresh_nats: NatsServer, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # A server of its own: update ids restart with every sandbox, and the updates stream
    # keeps deduplicating ids it saw in earlier tests even after a purge.
    nc = await nats.connect(fresh_nats.url)
    await streams.provision(nc.jetstream())
    env = {
        "NATS_URL": fresh_nats.url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "NOTIFIER_POLLING__LEASE_TTL_S": "3",
        "NOTIFIER_POLLING__LEASE_CHECK_S": "0.2",
        "NOTIFIER_POLLING__TIMEOUT_S": "1",
    }
    chat = sandbox.create_chat(type="private", user={"id": 888, "first_name": "Bo"})["id"]
    replicas = {
        name: NotifierProcess(
            {**env, "NOTIFIER_INSTANCE_ID": name}, log_path=str(tmp_path / f"{name}.log")
        )
        for name in ("rep-a", "rep-b")
    }
    try:
        for process in replicas.values():
            process.start()
        for process in replicas.values():
            await asyncio.to_thread(process.wait_ready)
        bridge = await nc.jetstream().key_value(subjects.KV_BRIDGE)

        async def leader() -> str | None:
            try:
                value = (await bridge.get(subjects.BRIDGE_KEY_POLLER_LEASE)).value
            except nats.js.errors.KeyNotFoundError:
                return None
            return value.decode() if value else None

        await wait_until(leader)
        first_leader = await leader()
        assert first_leader is not None
        stop = threading.Event()
        writer = asyncio.create_task(asyncio.to_thread(_writer, sandbox, chat, 120, stop))
        await asyncio.sleep(1.5)
        killed_at = time.time()
        replicas[first_leader].kill()
        written = await writer
        survivor = next(name for name in replicas if name != first_leader)

        async def all_stored() -> bool:
            return len(await _updates(nc)) >= len(written)

        await wait_until(all_stored, timeout_s=20)
        assert await leader() == survivor
        updates = await _updates(nc)
        assert sorted(u.update_id for u in updates) == sorted(written)  # none lost, none twice
        polls = sandbox_calls(sandbox, "getUpdates")
        # The sandbox answers 409 to the earlier of two concurrent pollers: never happened.
        assert [call for call in polls if call["status"] != 200] == []
        resumed = min(call["timestamp"] for call in polls if call["timestamp"] > killed_at)
        takeover_s = resumed - killed_at
        print(f"takeover after kill: {takeover_s:.2f}s (lease TTL 3s)")
        assert takeover_s < 2 * 3.0  # within the TTL, with room for a loaded machine
        heartbeat = json.loads((await bridge.get(subjects.bridge_instance_key(survivor))).value)
        assert heartbeat["poller"] is True
        # A clean stop (SIGTERM) exits 0 and gives the lease back at once.
        assert replicas[survivor].stop() == 0
        assert await leader() is None
    finally:
        for process in replicas.values():
            process.stop()
        await nc.close()


async def test_files_people_send_are_fetched_and_stored_with_their_update(
    nc: Client, sandbox: RunningSandbox, start_notifier: Any, make_settings: Any
) -> None:
    chat = sandbox.create_chat(type="private", user={"id": 778, "first_name": "Bo"})["id"]
    await start_notifier(
        make_settings(sandbox, instance_id="files", polling={"enabled": True, **FAST_LEASE})
    )
    photo = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (5).to_bytes(4, "big") * 2 + b"\x08\x02"
    photo += bytes(range(256)) * 600
    sandbox.send_file(chat, photo, photo=True, caption="the rack")
    too_big = b"z" * (20 * 1024 * 1024 + 1)
    sandbox.send_file(chat, too_big, file_name="dump.bin")

    async def both() -> bool:
        return len(await _updates(nc)) == 2

    await wait_until(both)
    first, second = await _updates(nc)
    (stored,) = first.files
    assert (stored.kind.value, stored.type, stored.size) == ("photo", "image/jpeg", len(photo))
    assert stored.id == f"tg{first.update_id}-0"
    found = await files.lookup(nc.jetstream(), stored.id)
    assert b"".join([c async for c in found.chunks(nc.jetstream())]) == photo
    assert found.owner is None  # events gives it the owner of the card it answers, if any
    (skipped,) = second.files
    assert skipped.id is None
    assert skipped.name == "dump.bin"
    assert "20 MB" in (skipped.error or "")
