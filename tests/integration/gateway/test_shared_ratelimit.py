"""A key's rate limit holds across gateway replicas: two real gateway processes share one
budget on NATS, and a refused call looks the same on both (429 + Retry-After, MCP isError)."""

from __future__ import annotations

import httpx
import pytest

from cctelegram_common.contracts.auth import Role

from .conftest import create_key

pytestmark = pytest.mark.e2e

LIMIT = 5


async def test_a_key_gets_at_most_its_limit_across_two_replicas(gateways, auth_stack) -> None:
    key = await create_key(auth_stack.nats_url, Role.AGENT, rate_limit_per_minute=LIMIT)
    headers = {"Authorization": f"Bearer {key}"}
    statuses: list[int] = []
    refused: list[httpx.Response] = []
    async with httpx.AsyncClient(timeout=10) as http:
        for index in range(4 * LIMIT):  # alternate: each replica alone would allow LIMIT
            replica = gateways[index % 2]
            response = await http.post(
                f"{replica.url}/v1/tools/list_event_types", json={}, headers=headers
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused.append(response)
        mcp = await http.post(
            f"{gateways[1].url}/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "list_event_types", "arguments": {}},
            },
            headers={**headers, "Accept": "application/json, text/event-stream"},
        )
    allowed = statuses.count(200)
    assert set(statuses) == {200, 429}, statuses
    # At most the limit plus one refill step (LIMIT/60 tokens a second) however calls spread.
    assert LIMIT <= allowed <= LIMIT + 1, statuses
    assert statuses[:LIMIT] == [200] * LIMIT  # the first LIMIT are served, from both replicas
    for response in refused:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"
        assert response.json()["error"]["retry_after_s"] > 0
    result = mcp.json()["result"]
    assert result["isError"] is True
    assert "retry in" in result["content"][0]["text"]
