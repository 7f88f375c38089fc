"""The suite from its images: every container hardened and healthy, an MCP message and an
approval decided by a press in the sandbox, the notifier container killed and restarted with
nothing lost, and no secret in any container's log. Figures: cold start, image sizes, RSS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from containersuite import (
    DEMO_USER_ID,
    SERVICE_UID,
    TAG,
    Suite,
    hardened,
    health_status,
    http_ok,
    wait_until,
)
from mcp import Client

from cctelegram_testing.mcp import call_ok, mcp_client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@contextlib.asynccontextmanager
async def connect(suite: Suite) -> AsyncIterator[Client]:
    async with mcp_client(suite.mcp_url, suite.api_key) as client:
        yield client


call = call_ok


def chat_messages(suite: Suite) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5
    )
    response.raise_for_status()
    return list(response.json())


def message_with(suite: Suite, needle: str) -> dict[str, Any] | None:
    return next((m for m in chat_messages(suite) if needle in (m.get("text") or "")), None)


async def eventually(predicate: Any, timeout_s: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not met in {timeout_s}s")


def test_every_container_is_hardened_and_healthy(suite: Suite) -> None:
    assert set(suite.containers) == {
        "nats",
        "sandbox",
        "auth",
        "events",
        "notifier",
        "bridge-manager",
        "gateway",
    }
    for name, container in suite.containers.items():
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        host = wrapped.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True, name
        assert host["CapDrop"] == ["ALL"], name
        assert "/tmp" in host["Tmpfs"], name
        assert host["NetworkMode"] == "host", name
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        # Non-root both as run and as the image declares it.
        assert wrapped.attrs["Config"]["User"] == f"{SERVICE_UID}:{SERVICE_UID}", name
        assert wrapped.image.attrs["Config"]["User"] == f"{SERVICE_UID}:{SERVICE_UID}", name
        code, out = wrapped.exec_run(["python", "-c", "import os; print(os.getuid())"])
        assert code == 0, (name, out)
        assert out.decode().strip() == str(SERVICE_UID), name
        assert wrapped.image.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD", name
    # The image's own HEALTHCHECK reports healthy for every container.
    for name, container in suite.containers.items():
        wait_until(lambda c=container: health_status(c) == "healthy", f"{name} healthy")
    for name in ("auth", "events", "notifier", "bridge-manager", "gateway"):
        assert http_ok(suite.health_url(name)), name


def test_the_cli_image_provisions_as_a_one_shot_job(suite: Suite) -> None:
    """The provisioning job's image (compose's ``provision``, the Kubernetes Job): hardened
    like the services, it finds every stream and bucket the services created and exits 0."""
    job = (
        hardened("cli")
        .with_command(["provision"])
        .with_env("NATS_URL", f"nats://127.0.0.1:{suite.ports['nats']}")
        .start()
    )
    try:
        wrapped = job.get_wrapped_container()
        assert wrapped.wait(timeout=120)["StatusCode"] == 0
        logs = b"".join(job.get_logs()).decode(errors="replace")
        assert "cctelegram provision:" in logs
        assert wrapped.image.attrs["Config"].get("Healthcheck") is None  # a job, not a server
    finally:
        job.stop()


async def test_mcp_message_and_an_approval_pressed_in_the_sandbox(suite: Suite) -> None:
    async with connect(suite) as mcp:
        sent = await call(mcp, "send_telegram_message", {"message": "from the containers 📦"})
        assert sent["success"] is True
        await eventually(lambda: message_with(suite, "from the containers 📦"), what="message")

        asked = await call(
            mcp,
            "send_approval_request",
            {"title": "Ship the images?", "description": "all green", "options": ["Ship", "Wait"]},
        )
        card = await eventually(lambda: message_with(suite, "Ship the images?"), what="card")
        press = httpx.post(
            f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
            json={"user_id": DEMO_USER_ID, "text": "Ship"},
            timeout=5,
        )
        assert press.is_success, press.text
        decided = await call(
            mcp, "wait_for_approval", {"approval_id": asked["approval_id"], "timeout_seconds": 60}
        )
        assert decided["approval"]["chosen_option"] == "Ship"


async def test_the_notifier_killed_and_restarted_loses_nothing(suite: Suite) -> None:
    notifier = suite.containers["notifier"].get_wrapped_container()
    async with connect(suite) as mcp:
        await call(mcp, "send_telegram_message", {"message": "before the kill"})
        await eventually(lambda: message_with(suite, "before the kill"), what="first message")
        notifier.kill()  # SIGKILL: no graceful drain
        notifier.reload()
        assert notifier.status != "running"
        # While it is down the gateway still accepts; the messages wait in JetStream.
        texts = [f"while down <{index}>" for index in range(10)]
        for text in texts:
            await call(mcp, "send_telegram_message", {"message": text})
        await asyncio.sleep(1)
        assert not any(message_with(suite, text) for text in texts)
        notifier.start()
        await eventually(lambda: http_ok(suite.health_url("notifier")), what="notifier ready again")
        await eventually(
            lambda: all(message_with(suite, text) for text in texts),
            what="every message sent while the notifier was down",
        )
        for text in texts:  # exactly once each
            copies = [m for m in chat_messages(suite) if text in (m.get("text") or "")]
            assert len(copies) == 1, (text, len(copies))


def test_container_logs_hold_no_secret(suite: Suite) -> None:
    assert all(len(value) >= 20 for value in suite.secrets.values())
    for name, container in suite.containers.items():
        logs = b"".join(container.get_logs()).decode(errors="replace")
        assert logs.strip() or name in ("nats", "sandbox"), f"{name} logged nothing at all"
        for what, value in suite.secrets.items():
            assert value not in logs, f"{name}'s log holds the {what}"
            # The secret part of a token or key alone (after its id / bot number) too.
            tail = value.split(":", 1)[-1].split("_", 1)[-1]
            assert tail not in logs, f"{name}'s log holds part of the {what}"


def rss_mb(container: Any) -> float:
    """Resident memory of the container's cgroup (anonymous memory, not page cache)."""
    stats = container.get_wrapped_container().stats(stream=False, one_shot=True)["memory_stats"]
    inner = stats.get("stats", {})
    return round(inner.get("rss", inner.get("anon", stats.get("usage", 0))) / 1e6, 1)


async def delivery_burst(suite: Suite, peaks: dict[str, float]) -> dict[str, float]:
    """As bench/delivery_rate.py: 600 messages over 60 private chats stored in the outbox at
    once, delivered at Telegram's real limits; RSS sampled while they go out."""
    import nats

    from cctelegram_common import subjects
    from cctelegram_common.contracts.outbox import Operation, OutboxMessage

    chats = []
    with httpx.Client(base_url=suite.sandbox_url, timeout=5) as sandbox:
        for n in range(60):
            user = {"id": 20_000 + n, "first_name": f"P{n}"}
            created = sandbox.post(
                "/sandbox/api/chats", json={"type": "private", "id": user["id"], "user": user}
            )
            created.raise_for_status()
            chats.append(int(created.json()["id"]))
        before = int(sandbox.get("/sandbox/api/stats").json()["messages_by_bot"])
    connection = await nats.connect(f"nats://127.0.0.1:{suite.ports['nats']}")
    try:
        js = connection.jetstream()

        async def reported() -> int:
            # One delivery report per original message, whether it went out alone or inside
            # a coalesced burst (the notifier merges a chat's waiting notifications).
            return int((await js.stream_info(subjects.STREAM_DELIVERIES)).state.messages)

        reports_before = await reported()
        for index in range(600):
            chat = chats[index % len(chats)]
            outbox_id = f"burst-{index}"
            message = OutboxMessage(
                outbox_id=outbox_id,
                operation=Operation.SEND_MESSAGE,
                chat_id=chat,
                text=outbox_id,
                parse_mode=None,
            )
            await js.publish(
                subjects.outbox_subject(chat),
                message.model_dump_json().encode(),
                headers={subjects.HEADER_MSG_ID: outbox_id},
                stream=subjects.STREAM_OUTBOX,
            )
        started = time.monotonic()
        deadline = started + 180
        delivered = 0
        while delivered < 600:
            assert time.monotonic() < deadline, f"{delivered}/600 delivered"
            for name, container in suite.containers.items():
                peaks[name] = max(peaks.get(name, 0.0), await asyncio.to_thread(rss_mb, container))
            delivered = await reported() - reports_before
        elapsed = time.monotonic() - started
    finally:
        await connection.close()
    with httpx.Client(base_url=suite.sandbox_url, timeout=5) as sandbox:
        sent = int(sandbox.get("/sandbox/api/stats").json()["messages_by_bot"]) - before
    return {
        "messages": 600,
        "telegram_messages": sent,
        "seconds": round(elapsed, 1),
        "rate_per_s": round(600 / elapsed, 1),
    }


async def test_figures_image_sizes_cold_start_rss_idle_and_under_a_burst(suite: Suite) -> None:
    """Not an assertion of speed: prints the figures the README quotes, and writes them to
    CCTG_IMAGE_FIGURES (a JSON file) when set."""
    figures: dict[str, Any] = {"cold_start_to_ready_s": round(suite.cold_start_s, 1)}
    sizes = {}
    idle = {}
    for name, container in suite.containers.items():
        sizes[name] = round(container.get_wrapped_container().image.attrs["Size"] / 1e6, 1)
        idle[name] = await asyncio.to_thread(rss_mb, container)
    figures["image_size_mb"] = sizes
    figures["rss_idle_mb"] = idle
    peaks: dict[str, float] = {}
    figures["burst"] = await delivery_burst(suite, peaks)
    figures["rss_peak_under_burst_mb"] = peaks
    figures["tag"] = TAG
    assert all(size > 0 for size in sizes.values())
    assert all(value > 0 for value in idle.values())
    target = os.environ.get("CCTG_IMAGE_FIGURES")
    if target:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n")
    print("\nimage figures:", json.dumps(figures))
