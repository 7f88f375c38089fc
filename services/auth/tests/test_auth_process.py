"""The real auth process on a real nats-server: start-up rules, bootstrap, RPCs, broadcast."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import nats
import pytest

from cctelegram_common import subjects
from cctelegram_common.apikeys import generate_key
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyChanged,
    KeyList,
    ListKeysRequest,
    RevokeKeyRequest,
    Role,
    VerifyRequest,
    VerifyResponse,
)
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_testing.nats import NatsServer
from cctelegram_testing.processes import ServiceProcess

pytestmark = pytest.mark.e2e


def test_it_refuses_to_start_without_a_strong_secret(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTH_")}
    for extra in ({}, {"AUTH_SECRET": "too-short"}):
        result = subprocess.run(
            [sys.executable, "-m", "cctelegram_auth"],
            env={**env, **extra, "NATS_URL": "nats://127.0.0.1:1"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "AUTH_SECRET" in lines[0]
        assert "too-short" not in result.stderr


async def rpc(nc: nats.NATS, subject: str, request: object) -> RpcReply:
    message = await nc.request(subject, request.model_dump_json().encode(), timeout=5)  # type: ignore[attr-defined]
    return RpcReply.model_validate_json(message.data)


# Each test runs its own nats-server: auth replicas in one queue group must share a secret,
# so an auth process of another test on a shared server would answer with the wrong one.
async def test_bootstrap_create_verify_revoke_with_broadcast_and_audit(
    fresh_nats: NatsServer, tmp_path: Path
) -> None:
    nats_url = fresh_nats.url
    dev_key = generate_key().full
    key_file = tmp_path / "dev-api-key"
    key_file.write_text(dev_key)
    secret_file = tmp_path / "auth-secret"
    secret_file.write_text(uuid.uuid4().hex * 2)
    env = {
        "NATS_URL": nats_url,
        "AUTH_SECRET_FILE": str(secret_file),
        "AUTH_BOOTSTRAP_KEY_FILE": str(key_file),
    }
    auth = ServiceProcess("cctelegram_auth", "AUTH_", env, tmp_path / "auth.log")
    nc = await nats.connect(nats_url)
    try:
        auth.start()
        client_id = f"ci-{uuid.uuid4().hex[:8]}"
        changes: asyncio.Queue[KeyChanged] = asyncio.Queue()

        async def on_change(message: nats.aio.msg.Msg) -> None:
            await changes.put(KeyChanged.model_validate_json(message.data))

        await nc.subscribe(subjects.AUTH_KEY_CHANGED, cb=on_change)

        reply = await rpc(nc, subjects.AUTH_RPC_VERIFY, VerifyRequest(api_key=dev_key))
        dev = VerifyResponse.model_validate(reply.result)
        assert dev.valid
        assert dev.principal
        assert dev.principal.role is Role.ADMIN

        reply = await rpc(
            nc, subjects.AUTH_RPC_CREATE_KEY, CreateKeyRequest(client_id=client_id, actor="dev")
        )
        created = CreatedKey.model_validate(reply.result)
        assert (await changes.get()).change == "created"
        reply = await rpc(nc, subjects.AUTH_RPC_VERIFY, VerifyRequest(api_key=created.api_key))
        assert VerifyResponse.model_validate(reply.result).valid

        reply = await rpc(nc, subjects.AUTH_RPC_LIST_KEYS, ListKeysRequest(client_id=client_id))
        listed = KeyList.model_validate(reply.result)
        assert [key.key_id for key in listed.keys] == [created.key.key_id]
        assert created.api_key not in reply.model_dump_json()

        reply = await rpc(
            nc,
            subjects.AUTH_RPC_REVOKE_KEY,
            RevokeKeyRequest(key_id=created.key.key_id, actor="dev", request_id="req-1"),
        )
        assert reply.ok
        change = await asyncio.wait_for(changes.get(), 5)
        assert change == KeyChanged(key_id=created.key.key_id, change="revoked")
        reply = await rpc(nc, subjects.AUTH_RPC_VERIFY, VerifyRequest(api_key=created.api_key))
        assert VerifyResponse.model_validate(reply.result).reason == "revoked"

        # Malformed requests get an answer, not a timeout.
        message = await nc.request(subjects.AUTH_RPC_REVOKE_KEY, b"{nonsense", timeout=5)
        assert RpcReply.model_validate_json(message.data).error.code == "invalid"  # type: ignore[union-attr]

        js = nc.jetstream()
        audit = await js.get_last_msg(
            subjects.STREAM_AUDIT, subjects.audit_subject("auth", "key.revoked")
        )
        record = json.loads(audit.data)
        assert record["request_id"] == "req-1"
        assert record["target"] == created.key.key_id
        assert created.api_key.split("_")[-1] not in audit.data.decode()
    finally:
        await nc.close()
        assert auth.stop() == 0
    output = auth.output()
    assert "bootstrap_key" in output
    for secret in (dev_key, created.api_key, secret_file.read_text()):
        assert secret not in output


async def test_bootstrap_is_idempotent_across_restarts(
    fresh_nats: NatsServer, tmp_path: Path
) -> None:
    nats_url = fresh_nats.url
    dev_key = generate_key().full
    (tmp_path / "key").write_text(dev_key)
    env = {
        "NATS_URL": nats_url,
        "AUTH_SECRET": "q" * 40,
        "AUTH_BOOTSTRAP_KEY_FILE": str(tmp_path / "key"),
    }
    for attempt in range(2):
        with ServiceProcess("cctelegram_auth", "AUTH_", env, tmp_path / f"a{attempt}.log") as auth:
            pass
        assert ("created" if attempt == 0 else "present") in auth.output()
