"""The worked example's shape through `cctelegram up`: a routes file naming a second bot and a
rule for one project; the sandbox serves both bots; a send with that project arrives through
the second bot, everything else as before; the bridge status lists both bots."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.suite import RunningSuite, start_suite

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OPS_TOKEN = "424242:ops-bot-token-abcdefghijklmnop"
OPS_BOT = 424242


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    data = Path(tmp_path_factory.mktemp("routes-up"))
    routes = data / "routes.yaml"
    routes.write_text(
        f"bots:\n  ops: '{OPS_TOKEN}'\n"
        f"routes:\n  - name: ops-project\n    projects: [ops]\n    bot: ops\n"
        f"    chat_id: {DEMO_USER_ID}\n"
    )
    running = start_suite(data, CCTELEGRAM_ROUTES_FILE=str(routes))
    try:
        yield running
    finally:
        running.stop()


def messages(suite: RunningSuite, **params: Any) -> list[str]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", params=params, timeout=5
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return [m.get("text") or "" for m in response.json()]


def arrives(suite: RunningSuite, needle: str, timeout_s: float = 30, **params: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(needle in text for text in messages(suite, **params)):
            return
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never arrived ({params})")


def test_a_project_goes_through_its_route_and_bot(suite: RunningSuite) -> None:
    # The ops bot has chats of its own in the sandbox: the demo user starts it.
    httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats",
        params={"bot": OPS_BOT},
        json={"type": "private", "user": {"id": DEMO_USER_ID, "first_name": "Demo"}},
        timeout=5,
    ).raise_for_status()
    gateway = suite.mcp_url.removesuffix("/mcp")
    headers = {"Authorization": f"Bearer {suite.api_key}"}
    for message, project in (("ops deploy done", "ops"), ("web note", "web")):
        sent = httpx.post(
            f"{gateway}/v1/tools/send_telegram_message",
            json={"message": message, "project": project},
            headers=headers,
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
    arrives(suite, "ops deploy done", bot=OPS_BOT)
    arrives(suite, "web note")
    assert not any("ops deploy done" in text for text in messages(suite))
    routes = httpx.get(f"{gateway}/v1/routes", headers=headers, timeout=10)
    assert routes.status_code == 200, routes.text
    assert [rule["name"] for rule in routes.json()["rules"]] == ["ops-project"]

    deadline = time.monotonic() + 20
    while True:
        status = httpx.post(
            f"{gateway}/v1/tools/get_bridge_status", json={}, headers=headers, timeout=10
        ).json()
        bots = {bot["name"] for i in status.get("instances", []) for bot in i.get("bots", [])}
        if bots == {"default", "ops"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert bots == {"default", "ops"}
