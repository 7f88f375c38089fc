"""Real gateway processes: the official MCP client on both wires, revocation reaching every
replica within a second, the key CLI, the stdio proxy, and no secret in any log line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import RevokeKeyRequest, Role

from .conftest import create_key, rpc

pytestmark = pytest.mark.e2e


async def _session(url: str, key: str, mode: str):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return http, Client(streamable_http_client(url, http_client=http), mode=mode)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_official_client_on_both_wires_across_replicas(gateways, keys, mode: str) -> None:
    for replica in gateways:
        http, client = await _session(f"{replica.url}/mcp", keys.agent, mode)
        async with http, client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "send_telegram_message" in names
            assert "create_api_key" not in names
            assert "start_bridge" not in names
            result = await client.call_tool("send_telegram_message", {"message": f"hi {mode}"})
            assert not result.is_error, result
            assert result.structured_content["success"] is True
            denied = await client.call_tool("create_api_key", {"client_id": "x"})
            assert denied.is_error
            assert "keys:manage" in denied.content[0].text


async def test_a_revoked_key_stops_on_every_replica_within_a_second(gateways, auth_stack) -> None:
    key = await create_key(auth_stack.nats_url, Role.AGENT)
    urls = [f"{replica.url}/v1/tools/list_event_types" for replica in gateways]
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=5) as http:
        for url in urls:  # warm both caches: from now on they answer without asking auth
            assert (await http.post(url, json={}, headers=headers)).status_code == 200
        started = time.monotonic()
        await rpc(
            auth_stack.nats_url,
            subjects.AUTH_RPC_REVOKE_KEY,
            RevokeKeyRequest(key_id=key.split("_")[1]),
        )
        refused_after: list[float] = []
        for url in urls:
            deadline = started + 5
            while time.monotonic() < deadline:
                if (await http.post(url, json={}, headers=headers)).status_code == 401:
                    refused_after.append(time.monotonic() - started)
                    break
        assert len(refused_after) == 2
        assert max(refused_after) < 1.0, refused_after


def _cli(*args: str, nats_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cctelegram_cli", *args],
        env={**os.environ, "NATS_URL": nats_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_cli_create_list_rotate_revoke(auth_stack, gateways) -> None:
    client_id = f"cli-{uuid.uuid4().hex[:6]}"
    created = _cli(
        "keys", "create", "--client-id", client_id, "--role", "reader", nats_url=auth_stack.nats_url
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("cctg_")
    assert len(created.stdout.splitlines()) == 1
    url = f"{gateways[0].url}/v1/tools/list_event_types"
    assert httpx.post(url, json={}, headers={"Authorization": f"Bearer {key}"}).status_code == 200

    listed = _cli("keys", "list", "--client-id", client_id, "--json", nats_url=auth_stack.nats_url)
    assert json.loads(listed.stdout)["keys"][0]["role"] == "reader"
    assert key.split("_")[2] not in listed.stdout

    key_id = key.split("_")[1]
    rotated = _cli("keys", "rotate", key_id, "--grace", "0", nats_url=auth_stack.nats_url)
    assert rotated.returncode == 0, rotated.stderr
    new_key = rotated.stdout.strip()
    revoked = _cli("keys", "revoke", new_key.split("_")[1], nats_url=auth_stack.nats_url)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    bad = _cli("keys", "revoke", "nonexistent1", nats_url=auth_stack.nats_url)
    assert bad.returncode == 1
    assert bad.stderr.startswith("cctelegram keys: ")


async def test_stdio_proxy_with_the_official_stdio_client(gateways, keys) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cctelegram_cli", "stdio", "--url", f"{gateways[1].url}/mcp"],
        env={"CCTELEGRAM_API_KEY": keys.agent, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    async with Client(params) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "send_telegram_message" in names
        result = await client.call_tool("send_telegram_message", {"message": "via stdio"})
        assert not result.is_error, result
        assert result.structured_content["success"] is True
        invalid = await client.call_tool("send_telegram_message", {})
        assert invalid.is_error
        assert "message" in invalid.content[0].text


def test_stdio_stdout_carries_only_json_rpc(gateways, keys) -> None:
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "cctelegram_cli", "stdio", "--url", f"{gateways[0].url}/mcp"],
        env={**os.environ, "CCTELEGRAM_API_KEY": keys.agent},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for request in requests:
            process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        answers_text = [process.stdout.readline(), process.stdout.readline()]
    finally:
        process.stdin.close()
        process.wait(30)
        stdout_rest = process.stdout.read()
        process.stdout.close()
        stderr = process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    result = subprocess.CompletedProcess(
        process.args, process.returncode, "".join(answers_text) + stdout_rest, stderr
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 2, result.stdout + result.stderr
    answers = [json.loads(line) for line in lines]
    assert all(answer["jsonrpc"] == "2.0" for answer in answers)
    assert answers[1]["id"] == 2
    assert answers[1]["result"]["tools"]
    assert keys.agent not in result.stderr


def test_no_key_appears_in_any_log_line(gateways, auth_stack, keys) -> None:
    """Canary: hammer the replicas with every kind of key, then search every log."""
    canary = keys.admin
    for replica in gateways:
        for key in [canary, *keys.bad().values(), keys.reader]:
            httpx.post(
                f"{replica.url}/v1/tools/send_telegram_message",
                json={"message": "canary"},
                headers={"Authorization": f"Bearer {key}", "X-Request-Id": "canary"},
            )
        # A key where a key does not belong: in the arguments.
        httpx.post(
            f"{replica.url}/v1/tools/send_telegram_message",
            json={"message": 123, "source": canary},
            headers={"Authorization": f"Bearer {canary}"},
        )
    logs = "\n".join(replica.output() for replica in gateways) + auth_stack.logs()
    assert logs.strip()
    for secret in [canary, *keys.bad().values(), keys.reader, keys.agent, auth_stack.auth_secret]:
        secret_part = secret.split("_")[-1]
        assert secret not in logs
        assert len(secret_part) < 16 or secret_part not in logs
