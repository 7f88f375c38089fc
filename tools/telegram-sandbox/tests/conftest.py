"""Shared fixtures: an in-process sandbox with a manual clock, and Debian's chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cctelegram_sandbox import create_app
from cctelegram_sandbox.app import SandboxApp
from cctelegram_sandbox.config import ManualClock, SandboxConfig

TOKEN = "123456789:TEST-token-abcdefghijklmnopqrstuvwxyz"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(clock: ManualClock) -> SandboxApp:
    return create_app(SandboxConfig(token=TOKEN, clock=clock, webhook_initial_backoff_s=0.05))


@pytest.fixture
async def client(app: SandboxApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        yield client


@pytest.fixture(scope="session")
def chromium() -> dict[str, object]:
    """Launch options for Debian's chromium, installed with apt when missing.

    Never a browser downloaded by Playwright: those downloads do not work here.
    """
    launch_options: dict[str, object] = {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}
    if CHROMIUM.exists():
        return launch_options
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is missing and cannot be installed (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock_wait = ["-o", "DPkg::Lock::Timeout=120"]
    try:
        subprocess.run(
            ["apt-get", *lock_wait, "update", "-q"], check=True, env=env, timeout=600,
            capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["apt-get", *lock_wait, "install", "-y", "-q", "chromium"], check=True, env=env,
            timeout=900, capture_output=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"could not install chromium with apt-get: {error}")
    if not CHROMIUM.exists():
        pytest.skip("apt-get installed chromium but /usr/bin/chromium is missing")
    return launch_options


class BotCaller:
    """Calls Bot API methods on the in-process sandbox; returns (HTTP status, envelope)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.token = TOKEN

    async def __call__(self, method: str, /, **params: object) -> tuple[int, dict[str, object]]:
        response = await self.client.post(f"/bot{TOKEN}/{method}", json=params)
        return response.status_code, response.json()

    async def ok(self, method: str, /, **params: object) -> object:
        status, body = await self(method, **params)
        assert status == 200, body
        return body["result"]

    async def error(self, method: str, /, **params: object) -> tuple[int, str]:
        status, body = await self(method, **params)
        assert body["ok"] is False
        assert body["error_code"] == status
        return status, str(body["description"])

    async def control(self, http_method: str, path: str, /, **body: object) -> httpx.Response:
        return await self.client.request(http_method, f"/sandbox/api{path}", json=body or None)


@pytest.fixture
def bot(client: httpx.AsyncClient) -> BotCaller:
    return BotCaller(client)


@pytest.fixture
def token() -> str:
    return TOKEN
