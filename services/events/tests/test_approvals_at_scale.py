"""Approvals at scale on a real NATS: expiry through the due index (once across replicas),
retention by NATS itself, and the upgrade from the previous layout."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import nats
import pytest
from events_harness import EventsHarness, running_events
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus, SubmitApproval
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.outbox import Operation
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.due_index import scheduled_ids
from cctelegram_events.app import create_app
from cctelegram_testing.nats import NatsServer


async def submit(harness: EventsHarness, expires_in_s: float, **fields: object) -> SubmitApproval:
    command = SubmitApproval.model_validate(
        {
            "approval_id": uuid.uuid4().hex,
            "client_id": "agent-scale",
            "title": "Ship it?",
            "expires_at": utc_now() + timedelta(seconds=expires_in_s),
            **fields,
        }
    )
    await harness.nc.jetstream().publish(
        subjects.APPROVAL_SUBMIT,
        command.model_dump_json().encode(),
        headers={"Nats-Msg-Id": command.approval_id},
    )
    return command


async def record_or_none(kv: KeyValue, approval_id: str) -> ApprovalRecord | None:
    try:
        entry = await kv.get(approval_id)
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None
    return ApprovalRecord.model_validate_json(entry.value) if entry.value else None


async def until(condition: object, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


def press(chat_id: int, data: str) -> InboundUpdate:
    update_id = uuid.uuid4().int % 10**12
    return InboundUpdate(
        update_id=update_id,
        update={
            "update_id": update_id,
            "callback_query": {
                "id": f"cq-{uuid.uuid4().hex[:10]}",
                "from": {"id": chat_id, "is_bot": False, "first_name": "P"},
                "message": {"message_id": 1, "chat": {"id": chat_id, "type": "private"}},
                "chat_instance": "1",
                "data": data,
            },
        },
    )


async def test_two_replicas_expire_each_approval_exactly_once(nats_url: str) -> None:
    async with running_events(nats_url) as harness:
        replica = create_app(harness.settings)
        await asyncio.wait_for(replica.connect_forever(), 30)
        try:
            commands = [await submit(harness, 1.0 + i * 0.05) for i in range(20)]
            ids = {command.approval_id for command in commands}
            kv = await harness.nc.jetstream().key_value(subjects.KV_APPROVALS)

            async def all_expired() -> bool:
                records = [await record_or_none(kv, approval_id) for approval_id in ids]
                return all(r is not None and r.status is ApprovalStatus.EXPIRED for r in records)

            await until(all_expired)
            await asyncio.sleep(1.0)  # room for a second (wrong) expiry to show up
        finally:
            await replica.stop()
        # The tap sees every publish, even one JetStream would drop as a duplicate: each card
        # was edited by exactly one replica, once.
        edits = [
            (m.approval_id, m.chat_id)
            for m in harness.tap.messages
            if m.approval_id in ids and m.operation is Operation.EDIT_MESSAGE_TEXT
        ]
        assert sorted(edits) == sorted({(a, chat) for a in ids for chat in harness.users})
        # Decided approvals left the index.
        assert not ids & set(await scheduled_ids(harness.nc.jetstream()))


async def test_retention_removes_decided_approvals_and_nothing_else(
    fresh_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCTG_HISTORY_DAYS", str(2 / 86400))  # two seconds
    async with running_events(fresh_nats.url) as harness:
        js = harness.nc.jetstream()
        kv = await js.key_value(subjects.KV_APPROVALS)
        alice = harness.users[0]
        pressed = await submit(harness, 600)
        expired = await submit(harness, 0.5)
        still_open = await submit(harness, 600)
        await harness.tap.wait_for(
            lambda ms: any(
                m.approval_id == pressed.approval_id and m.keyboard and m.chat_id == alice
                for m in ms
            )
        )
        card = next(
            m
            for m in harness.tap.messages
            if m.approval_id == pressed.approval_id and m.keyboard and m.chat_id == alice
        )
        data = card.keyboard[0][0].callback_data or ""  # type: ignore[index]
        update = press(alice, data)
        await js.publish(
            subjects.TELEGRAM_UPDATES,
            update.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"tg-update-{update.update_id}"},
        )

        async def both_closed() -> bool:
            a = await record_or_none(kv, pressed.approval_id)
            b = await record_or_none(kv, expired.approval_id)
            return a is not None and not a.is_open and b is not None and not b.is_open

        await until(both_closed)

        async def both_removed() -> bool:
            return (
                await record_or_none(kv, pressed.approval_id) is None
                and await record_or_none(kv, expired.approval_id) is None
            )

        await until(both_removed)
        await asyncio.sleep(2.5)  # longer than the history time: the open one must stay
        kept = await record_or_none(kv, still_open.approval_id)
        assert kept is not None
        assert kept.status is ApprovalStatus.PENDING
        assert still_open.approval_id in await scheduled_ids(js)


async def old_layout(js: JetStreamContext) -> KeyValue:
    """The approvals bucket as the previous version made it: history 5, no per-key TTL."""
    return await js.create_key_value(
        KeyValueConfig(
            bucket=subjects.KV_APPROVALS,
            description="Approval state, revision-checked",
            history=5,
            storage=StorageType.FILE,
        )
    )


def old_record(expires_in_s: float, **fields: object) -> ApprovalRecord:
    now = utc_now()
    return ApprovalRecord.model_validate(
        {
            "approval_id": uuid.uuid4().hex,
            "client_id": "agent-old",
            "title": "From before the upgrade",
            "options": ("Approve", "Deny"),
            "approvers": (1,),
            "created_at": now - timedelta(days=60),
            "expires_at": now + timedelta(seconds=expires_in_s),
            **fields,
        }
    )


async def write_old_store(js: JetStreamContext, soon_s: float) -> dict[str, ApprovalRecord]:
    kv = await old_layout(js)
    now = utc_now()
    records = {
        "open_soon": old_record(soon_s),
        "open_later": old_record(3600.0),
        "decided_long_ago": old_record(
            -1, status=ApprovalStatus.APPROVED, decided_at=now - timedelta(days=40)
        ),
        "decided_recently": old_record(
            -1, status=ApprovalStatus.REJECTED, decided_at=now - timedelta(days=1)
        ),
    }
    for record in records.values():
        await kv.put(record.approval_id, record.model_dump_json().encode())
    soon = records["open_soon"]
    await kv.put(soon.approval_id, soon.model_dump_json().encode())  # a second revision
    return records


async def assert_upgraded(
    js: JetStreamContext, records: dict[str, ApprovalRecord], scheduled: tuple[str, ...]
) -> None:
    kv = await js.key_value(subjects.KV_APPROVALS)
    info = await js.stream_info(f"KV_{subjects.KV_APPROVALS}")
    assert info.config.allow_msg_ttl
    assert info.config.max_msgs_per_subject == 1
    assert set(await scheduled_ids(js)) >= {records[name].approval_id for name in scheduled}
    assert await record_or_none(kv, records["decided_long_ago"].approval_id) is None
    assert await record_or_none(kv, records["decided_recently"].approval_id) is not None


async def test_the_events_service_upgrades_the_old_layout_without_losing_open_approvals(
    tmp_path: Path,
) -> None:
    with NatsServer(tmp_path / "nats") as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        records = await write_old_store(js, soon_s=3)
        kv = await js.key_value(subjects.KV_APPROVALS)
        # The service's own provisioning upgrades the store, then the open approval that
        # fell due while it starts is expired on time and the other one stays open.
        async with running_events(server.url, allowed_users=(1, 2)):
            # (open_soon may have fired already: its schedule is gone once it did.)
            await assert_upgraded(js, records, ("open_later",))

            async def expired() -> bool:
                record = await record_or_none(kv, records["open_soon"].approval_id)
                return record is not None and record.status is ApprovalStatus.EXPIRED

            await until(expired)
            still = await record_or_none(kv, records["open_later"].approval_id)
            assert still is not None
            assert still.is_open
        await nc.close()
