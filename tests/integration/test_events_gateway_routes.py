"""Route rules on real NATS: managed through the gateway's tools (/v1/routes) and the CLI,
seeded from a routes file, and applied to what the events service puts in the outbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from events_harness import OutboxTap, running_events
from faststream.nats import NatsBroker

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_common.contracts.routing import RouteListRequest, RouteRule
from cctelegram_common.contracts.tools import SendMessageInput
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ToolContext, ToolError
from cctelegram_gateway.tools.events import send_telegram_message
from cctelegram_gateway.tools.routes import RemoveRouteInput, add_route, list_routes, remove_route


def context(broker: NatsBroker, client_id: str, role: Role) -> ToolContext:
    principal = Principal(
        client_id=client_id, key_id=f"k-{client_id}", role=role, permissions=ROLE_PERMISSIONS[role]
    )
    return ToolContext(
        principal=principal, request_id="req", broker=broker, reads=EventsReadModels(broker)
    )


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    connection = NatsBroker(nats_url)
    await connection.connect()
    try:
        yield connection
    finally:
        await connection.stop()


async def tap(broker: NatsBroker, subject: str) -> OutboxTap:
    seen = OutboxTap()
    await broker._connection.subscribe(subject, cb=seen.on_message)  # type: ignore[union-attr]
    return seen


async def test_routes_through_the_tools_select_by_project_and_fan_out(
    nats_url: str, broker: NatsBroker, tmp_path: Path
) -> None:
    client = f"agent-{uuid.uuid4().hex[:8]}"
    group, forum = -1009000000000 - os.getpid() % 1000, -1008000000000 - os.getpid() % 1000
    seeded = tmp_path / "routes.yaml"
    seeded.write_text(
        f"routes:\n  - name: seeded-{client}\n    clients: [{client}]\n    chat_id: {group}\n"
    )
    async with running_events(nats_url, routes_file=seeded) as harness:
        admin = context(broker, "admin", Role.ADMIN)
        agent = context(broker, client, Role.AGENT)
        # (Who may call these tools is the registry's check: test_security_matrix.)
        rule = RouteRule(
            name=f"api-{client}",
            clients=(client,),
            projects=("api",),
            bot="ops",
            chat_id=forum,
            topic="per-project",
        )
        await add_route(admin, rule)
        listed = await list_routes(admin, RouteListRequest())
        names = {r.name for r in listed.rules}
        assert {f"seeded-{client}", f"api-{client}"} <= names

        group_tap = await tap(broker, subjects.outbox_subject(group))
        forum_tap = await tap(broker, subjects.outbox_subject(forum, "ops"))
        await send_telegram_message(agent, SendMessageInput(message="shipped", project="api"))
        await send_telegram_message(agent, SendMessageInput(message="web only", project="web"))
        on_group = await group_tap.wait_for(lambda m: len(m) >= 2)
        (on_forum,) = await forum_tap.wait_for(lambda m: len(m) >= 1)
        assert len(on_group) == 2  # the client's rule takes both projects
        assert on_forum.bot == "ops"
        assert on_forum.topic is not None
        assert on_forum.topic.key == "project:api"

        removed = await remove_route(admin, RemoveRouteInput(name=f"api-{client}"))
        assert removed.chat_id == forum
        with pytest.raises(ToolError) as missing:
            await remove_route(admin, RemoveRouteInput(name=f"api-{client}"))
        assert missing.value.status == 404
        await remove_route(admin, RemoveRouteInput(name=f"seeded-{client}"))
        del harness


def test_cli_adds_lists_and_removes_a_rule(nats_url: str) -> None:
    async def serve() -> None:
        async with running_events(nats_url):
            await asyncio.to_thread(run_cli)

    name = f"cli-{uuid.uuid4().hex[:8]}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cctelegram_cli", "routes", "--nats-url", nats_url, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def run_cli() -> None:
        added = cli("add", name, "--chat", "-100123", "--project", "api,web", "--topic",
                    "per-project", "--client", name)  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "project=api,web" in added.stdout
        assert "topic=per-project" in added.stdout
        listed = cli("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert any(rule["name"] == name for rule in json.loads(listed.stdout)["rules"])
        bad = cli("add", "bad", "--chat", "5", "--topic", "per-project")
        assert bad.returncode == 2
        assert "forum" in bad.stderr
        assert cli("remove", name).returncode == 0
        gone = cli("remove", name)
        assert gone.returncode == 1
        assert "no route named" in gone.stderr

    asyncio.run(serve())
