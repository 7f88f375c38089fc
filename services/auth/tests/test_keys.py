"""The key rules against an in-memory store: issue, verify, expire, revoke, rotate, bootstrap."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from cctelegram_auth.keys import KeyNotFoundError, KeyService, KeyStateError
from cctelegram_auth.store import MemoryKeyStore
from cctelegram_common.apikeys import generate_key, parse_key
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.contracts.auth import (
    ROLE_PERMISSIONS,
    CreateKeyRequest,
    KeyChanged,
    ListKeysRequest,
    Permission,
    RevokeKeyRequest,
    Role,
    RotateKeyRequest,
)

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def setup() -> tuple[KeyService, MemoryKeyStore, Clock, list[KeyChanged], list[AuditRecord]]:
    store = MemoryKeyStore()
    clock = Clock()
    changes: list[KeyChanged] = []
    audits: list[AuditRecord] = []

    async def notify(change: KeyChanged) -> None:
        changes.append(change)

    async def audit(record: AuditRecord) -> None:
        audits.append(record)

    service = KeyService(store, SECRET, notify=notify, audit=audit, clock=clock)
    return service, store, clock, changes, audits


async def test_a_created_key_verifies_with_its_role_and_is_stored_only_as_a_digest(setup) -> None:
    service, store, _clock, _changes, audits = setup
    created = await service.create(
        CreateKeyRequest(client_id="ci-bot", role=Role.OPERATOR, rate_limit_per_minute=120)
    )
    key = parse_key(created.api_key)
    assert key is not None
    assert key.key_id == created.key.key_id
    stored = store.records[key.key_id][0].model_dump_json()
    assert key.secret not in stored
    assert created.api_key not in stored

    result = await service.verify(created.api_key)
    assert result.valid
    assert result.principal is not None
    assert result.principal.client_id == "ci-bot"
    assert result.principal.permissions == ROLE_PERMISSIONS[Role.OPERATOR]
    assert result.principal.rate_limit_per_minute == 120
    assert [record.action for record in audits] == ["key.created"]
    assert all(created.api_key not in record.model_dump_json() for record in audits)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda full: "", "malformed"),
        (lambda full: "Bearer " + full, "malformed"),
        (lambda full: full[:-1], "malformed"),
        (lambda full: generate_key().full, "unknown"),
        (lambda full: full[:-4] + ("AAAA" if full[-4:] != "AAAA" else "BBBB"), "wrong_secret"),
    ],
)
async def test_bad_keys_are_refused_with_a_reason(setup, mangle, reason) -> None:
    service = setup[0]
    created = await service.create(CreateKeyRequest(client_id="a"))
    result = await service.verify(mangle(created.api_key))
    assert not result.valid
    assert result.principal is None
    assert result.reason == reason


async def test_a_key_expires(setup) -> None:
    service, _store, clock, _changes, _audits = setup
    created = await service.create(CreateKeyRequest(client_id="a", expires_in_s=3600))
    assert (await service.verify(created.api_key)).valid
    clock.now += timedelta(seconds=3601)
    result = await service.verify(created.api_key)
    assert (result.valid, result.reason) == (False, "expired")
    listed = await service.list(ListKeysRequest())
    assert listed.keys == ()
    assert not (await service.list(ListKeysRequest(include_inactive=True))).keys[0].active


async def test_revoke_refuses_the_key_broadcasts_and_is_idempotent(setup) -> None:
    service, _store, _clock, changes, audits = setup
    created = await service.create(CreateKeyRequest(client_id="a"))
    info = await service.revoke(RevokeKeyRequest(key_id=created.key.key_id, actor="admin"))
    assert not info.active
    assert info.revoked_at is not None
    assert (await service.verify(created.api_key)).reason == "revoked"
    assert changes[-1] == KeyChanged(key_id=created.key.key_id, change="revoked")
    assert audits[-1].action == "key.revoked"
    assert audits[-1].client_id == "admin"
    again = await service.revoke(RevokeKeyRequest(key_id=created.key.key_id))
    assert again.revoked_at == info.revoked_at
    with pytest.raises(KeyNotFoundError):
        await service.revoke(RevokeKeyRequest(key_id="AAAAAAAAAAAA"))


async def test_rotation_leaves_two_active_keys_until_the_grace_ends(setup) -> None:
    service, _store, clock, changes, _audits = setup
    old = await service.create(CreateKeyRequest(client_id="agent-1", role=Role.AGENT))
    rotated = await service.rotate(RotateKeyRequest(key_id=old.key.key_id, old_key_valid_for_s=600))
    assert rotated.key.client_id == "agent-1"
    assert rotated.key.role is Role.AGENT
    assert rotated.old_key.rotated_to == rotated.key.key_id
    assert (await service.verify(old.api_key)).valid
    assert (await service.verify(rotated.api_key)).valid
    assert len((await service.list(ListKeysRequest(client_id="agent-1"))).keys) == 2
    assert changes[-1] == KeyChanged(key_id=old.key.key_id, change="rotated")
    clock.now += timedelta(seconds=601)
    assert (await service.verify(old.api_key)).reason == "expired"
    assert (await service.verify(rotated.api_key)).valid
    with pytest.raises(KeyStateError):
        await service.rotate(RotateKeyRequest(key_id=old.key.key_id))


async def test_rotation_with_no_grace_revokes_the_old_key_at_once(setup) -> None:
    service = setup[0]
    old = await service.create(CreateKeyRequest(client_id="a"))
    rotated = await service.rotate(RotateKeyRequest(key_id=old.key.key_id, old_key_valid_for_s=0))
    assert (await service.verify(old.api_key)).reason == "revoked"
    assert (await service.verify(rotated.api_key)).valid


async def test_last_used_is_written_lazily(setup) -> None:
    service, store, _clock, _changes, _audits = setup
    created = await service.create(CreateKeyRequest(client_id="a"))
    key_id = created.key.key_id
    revision_before = store.records[key_id][1]
    for _ in range(50):
        assert (await service.verify(created.api_key)).valid
    await service.drain()
    record, revision_after = store.records[key_id]
    assert record.last_used_at is not None
    assert revision_after == revision_before + 1  # one write for fifty uses


async def test_bootstrap_creates_the_dev_admin_key_once(setup) -> None:
    service, store, _clock, _changes, _audits = setup
    full = generate_key().full
    assert await service.ensure_bootstrap(full) == "created"
    assert await service.ensure_bootstrap(full) == "present"
    assert len(store.records) == 1
    result = await service.verify(full)
    assert result.valid
    assert result.principal is not None
    assert result.principal.client_id == "dev"
    assert result.principal.role is Role.ADMIN
    assert result.principal.rate_limit_per_minute is None
    assert result.principal.can(Permission.KEYS_MANAGE)
    with pytest.raises(ValueError, match="cctg_"):
        await service.ensure_bootstrap("not-a-key")


async def test_bootstrap_follows_a_new_server_secret(setup) -> None:
    _service, store, clock, _changes, _audits = setup
    full = generate_key().full
    first = KeyService(store, b"a" * 32, clock=clock)
    await first.ensure_bootstrap(full)
    second = KeyService(store, b"b" * 32, clock=clock)
    assert not (await second.verify(full)).valid
    assert await second.ensure_bootstrap(full) == "updated"
    assert (await second.verify(full)).valid


async def test_the_nats_store_lists_every_key_once_while_keys_are_written(nats_url: str) -> None:
    """nats-py's ``keys()`` is a watch: a key updated meanwhile came back twice, and under
    load it could end before a key already on its way was handed over (an empty list for a
    full bucket). The store reads the bucket's subject list instead."""
    import nats

    from cctelegram_auth.store import NatsKeyStore

    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        kv = await js.create_key_value(bucket=f"keys_listing_{time.time_ns()}")
        store = NatsKeyStore(kv)
        assert await store.key_ids() == []
        written = [f"k{number}" for number in range(20)]
        for key in written:
            await kv.put(key, b"{}")

        async def keep_writing() -> None:
            for round_number in range(200):
                await kv.put("k1", str(round_number).encode())

        writer = asyncio.create_task(keep_writing())
        listings = [await store.key_ids() for _ in range(20)]
        await writer
        assert all(sorted(listing) == sorted(written) for listing in listings)
        await kv.delete("k2")
        assert await store.get("k2") is None  # listed with its delete marker, loads as None
    finally:
        await connection.close()
