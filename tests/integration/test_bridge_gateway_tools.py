"""The gateway's bridge tools against the real bridge-manager process (cluster mode) on a real
nats-server, the fleet played by heartbeats (moved from the bridge-manager tests: it imports
the gateway)."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.nats import NatsBroker

from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_common.contracts.bridge import EnsureAction
from cctelegram_common.contracts.tools import NoInput
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ToolContext, ToolError
from cctelegram_gateway.tools import bridge as tools

pytestmark = pytest.mark.e2e


async def test_gateway_tools_reach_bridge_manager_and_say_when_it_is_down(
    fresh_nats: Any, fleet: Any, bridge_manager: Any
) -> None:
    principal = Principal(
        client_id="agent-7",
        key_id="key7",
        role=Role.OPERATOR,
        permissions=ROLE_PERMISSIONS[Role.OPERATOR],
    )
    broker = NatsBroker(fresh_nats.url)
    await broker.connect()
    try:
        ctx = ToolContext(
            principal=principal,
            request_id="tool-req-1",
            broker=broker,
            reads=EventsReadModels(broker),
        )
        await fleet.beat("sim-9")
        status = await tools.get_bridge_status(ctx, NoInput())
        assert status.running
        assert (await tools.bridge_status_resource(ctx)).live_instances == 1
        assert (await tools.check_bridge_process(ctx, NoInput())).instances == ("sim-9",)
        stopped = await tools.stop_bridge(ctx, NoInput())
        assert stopped.paused
        audit = await fleet.last_audit("bridge.stop")
        assert audit["client_id"] == "agent-7"
        assert audit["request_id"] == "tool-req-1"
        assert "via gateway" in audit["reason"]
        assert (await tools.ensure_bridge_running(ctx, NoInput())).action is EnsureAction.STARTED
        assert (await tools.start_bridge(ctx, NoInput())).success
        assert (await tools.restart_bridge(ctx, NoInput())).success

        assert bridge_manager.stop() == 0
        with pytest.raises(ToolError) as failure:
            await tools.get_bridge_status(ctx, NoInput())
        assert failure.value.status == 503
        assert "bridge-manager is not answering" in failure.value.message
    finally:
        await broker.stop()
