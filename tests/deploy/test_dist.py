"""``make dist`` → a package, not only a repository: the built files alone (``--no-index
--find-links dist/``) install ``cctelegram`` into a fresh virtual environment, whose
``cctelegram up`` starts the suite; an MCP call lands in the sandbox; Ctrl-C stops it cleanly.
Runs with ``CCTG_TEST_DIST=1`` (``make test-dist`` sets it after ``make dist``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import httpx2
import pytest
from deployfiles import ROOT
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("CCTG_TEST_DIST") != "1", reason="CCTG_TEST_DIST=1 unset"),
]
DIST = Path(os.environ.get("CCTG_DIST_DIR", ROOT / "dist"))
DEMO_USER_ID = 100001


def free_port_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports."""
    for start in range(20000 + os.getpid() % 20000, 60000, 7):
        sockets = []
        try:
            for port in range(start, start + length):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise AssertionError("no free port run")


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def send_over_mcp(url: str, api_key: str, text: str) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        result = await client.call_tool("send_telegram_message", {"message": text})
        assert not result.is_error, result.content


def test_cctelegram_installs_from_dist_alone_and_runs(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is neither the runner (UV) nor on PATH"
    wheels = sorted(DIST.glob("cctelegram-*.whl"))
    assert wheels, f"no cctelegram wheel in {DIST}: run make dist"
    venv = tmp_path / "venv"
    env = {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    }
    subprocess.run(
        [uv, "venv", "--no-config", "--python", sys.executable, str(venv)],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    # No index and no configured find-links: only the files in dist/.
    install = subprocess.run(
        [uv, "pip", "install", "--no-config", "--no-index", "--find-links", str(DIST),
         "--python", str(venv / "bin" / "python"), "cctelegram"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    cctelegram = venv / "bin" / "cctelegram"
    assert cctelegram.exists()

    base = free_port_run(7)
    data = tmp_path / "data"
    run_env = {
        key: value
        for key, value in env.items()
        if not key.startswith(("CCTELEGRAM_", "TELEGRAM_", "NATS_"))
    }
    run_env.update(
        {
            "CCTELEGRAM_DATA_DIR": str(data),
            "CCTELEGRAM_GATEWAY_PORT": str(base),
            "CCTELEGRAM_SANDBOX_PORT": str(base + 1),
            "CCTELEGRAM_NATS_PORT": str(base + 2),
            "CCTELEGRAM_SERVICE_PORTS_START": str(base + 3),
        }
    )
    output = tmp_path / "up.out"
    with output.open("w") as sink:
        up = subprocess.Popen(
            [str(cctelegram), "up"],
            cwd=tmp_path,  # not the repository: nothing may come from the source tree
            env=run_env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not ready(f"http://127.0.0.1:{base}/health/ready"):
            assert up.poll() is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline, "gateway not ready"
            time.sleep(0.2)
        # Every service runs from the fresh environment, not the repository's.
        where = "import cctelegram_gateway as m; print(m.__file__)"
        probe = subprocess.run(
            [str(venv / "bin" / "python"), "-c", where],
            capture_output=True, text=True, cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert str(venv) in probe.stdout
        api_key = (data / "dev-api-key").read_text().strip()
        asyncio.run(send_over_mcp(f"http://127.0.0.1:{base}/mcp", api_key, "installed from dist"))
        messages_url = f"http://127.0.0.1:{base + 1}/sandbox/api/chats/{DEMO_USER_ID}/messages"
        deadline = time.monotonic() + 30
        while not any(
            "installed from dist" in (m.get("text") or "")
            for m in httpx.get(messages_url, timeout=5).json()
        ):
            assert time.monotonic() < deadline, "the message did not reach the sandbox"
            time.sleep(0.2)
    finally:
        up.send_signal(signal.SIGINT)
        try:
            code = up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            raise
    assert code == 0, output.read_text()[-3000:]
    assert "CCTelegram is running." in output.read_text()
    # A clean stop: nothing listens on the suite's ports any more.
    for port in range(base, base + 7):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, port
