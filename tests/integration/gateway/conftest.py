"""Gateway test fixtures: a real auth process, keys of every kind, the gateway in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from starlette.testclient import TestClient

from cctelegram_auth.keys import digest
from cctelegram_common import subjects
from cctelegram_common.apikeys import generate_key
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyRecord,
    RevokeKeyRequest,
    Role,
)
from cctelegram_common.contracts.rpc import RpcReply
from cctelegram_common.settings import NatsSettings
from cctelegram_gateway.app import create_app
from cctelegram_gateway.settings import GatewaySettings
from cctelegram_testing.gateway import Stack, lifespan_app
from cctelegram_testing.nats import NatsServer


@dataclass
class Keys:
    """Full keys by kind: one per role, and the ways a key can be bad."""

    admin: str
    operator: str
    agent: str
    reader: str
    limited_agent: str  # 3 calls / minute
    revoked: str
    expired: str
    wrong_secret: str
    unknown: str
    malformed: str

    def role(self, role: Role) -> str:
        return str(getattr(self, role.value))

    def bad(self) -> dict[str, str]:
        return {
            "revoked": self.revoked,
            "expired": self.expired,
            "wrong_secret": self.wrong_secret,
            "unknown": self.unknown,
            "malformed": self.malformed,
        }


async def rpc(url: str, subject: str, request: object) -> RpcReply:
    nc = await nats.connect(url)
    try:
        message = await nc.request(subject, request.model_dump_json().encode(), timeout=5)  # type: ignore[attr-defined]
        return RpcReply.model_validate_json(message.data)
    finally:
        await nc.close()


async def create_key(url: str, role: Role, **extra: object) -> str:
    client_id = f"{role.value}-{uuid.uuid4().hex[:8]}"
    reply = await rpc(
        url, subjects.AUTH_RPC_CREATE_KEY, CreateKeyRequest(client_id=client_id, role=role, **extra)
    )
    return CreatedKey.model_validate(reply.result).api_key


async def make_keys(url: str, secret: str) -> Keys:
    made = {role: await create_key(url, role) for role in Role}
    limited = await create_key(url, Role.AGENT, rate_limit_per_minute=3)
    revoked = await create_key(url, Role.ADMIN)
    await rpc(url, subjects.AUTH_RPC_REVOKE_KEY, RevokeKeyRequest(key_id=revoked.split("_")[1]))
    # An expired key written straight into the bucket (the API's minimum lifetime is 60 s).
    expired = generate_key()
    nc = await nats.connect(url)
    try:
        kv = await nc.jetstream().key_value(subjects.KV_KEYS)
        now = datetime.now(UTC)
        record = KeyRecord(
            key_id=expired.key_id,
            digest=digest(secret.encode(), expired),
            client_id="expired-client",
            role=Role.ADMIN,
            created_at=now - timedelta(hours=2),
            expires_at=now - timedelta(hours=1),
        )
        await kv.put(expired.key_id, record.model_dump_json().encode())
    finally:
        await nc.close()
    admin = made[Role.ADMIN]
    return Keys(
        admin=admin,
        operator=made[Role.OPERATOR],
        agent=made[Role.AGENT],
        reader=made[Role.READER],
        limited_agent=limited,
        revoked=revoked,
        expired=expired.full,
        wrong_secret=admin[:-6] + ("AAAAAA" if not admin.endswith("AAAAAA") else "BBBBBB"),
        unknown=generate_key().full,
        malformed="cctg_short_secret",
    )


@pytest.fixture(scope="session")
def auth_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One real auth process for the session, on a NATS of the gateway tests' own: auth
    replicas in one queue group must share a secret, so no other suite's auth may answer."""
    directory = Path(tmp_path_factory.mktemp("auth"))
    with NatsServer(directory / "nats") as server:
        stack = Stack(server.url, directory)
        try:
            yield stack.start(gateways=0)
        finally:
            stack.stop()


@pytest.fixture(scope="session")
def keys(auth_stack: Stack) -> Keys:
    return asyncio.run(make_keys(auth_stack.nats_url, auth_stack.auth_secret))


@pytest.fixture
def client(auth_stack: Stack) -> Iterator[TestClient]:
    """The gateway in-process (connected to the session NATS) behind Starlette's TestClient."""
    settings = GatewaySettings(
        nats=NatsSettings(urls=[auth_stack.nats_url]),
        telegram_webhook_secret="webhook-secret-for-tests",  # type: ignore[arg-type]
    )
    gateway = create_app(settings)
    with TestClient(lifespan_app(gateway), base_url="http://127.0.0.1:8080") as test_client:
        test_client.gateway = gateway  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture(scope="session")
def gateways(auth_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list]:
    """Two real gateway replicas on the session NATS and auth (logs kept for canary checks)."""
    from cctelegram_testing.processes import ServiceProcess

    directory = Path(tmp_path_factory.mktemp("gateways"))
    replicas = []
    try:
        for index in range(2):
            replicas.append(
                ServiceProcess(
                    "cctelegram_gateway",
                    "GATEWAY_",
                    {"NATS_URL": auth_stack.nats_url},
                    directory / f"gateway-{index}.log",
                ).spawn()
            )
        for replica in replicas:
            replica.wait_ready()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()
