"""A service started without NATS stays up, reports why it is not ready, and stops on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from cctelegram_testing.nats import NatsServer, free_port


def _wait_for(url: str, timeout_s: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return httpx.get(url, timeout=1)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_without_nats_readiness_fails_with_reason_then_recovers(fresh_nats: NatsServer) -> None:
    fresh_nats.stop()  # the port is known but nothing listens yet
    port = free_port()
    env = {
        **os.environ,
        "NATS_URL": fresh_nats.url,
        "EVENTS_HTTP__PORT": str(port),
        "EVENTS_LOG__LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cctelegram_events"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/health").json()["status"] == "pass"
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready")
        assert ready.status_code == 503
        assert ready.headers["content-type"].startswith("application/health+json")
        body = ready.json()
        assert body["status"] == "fail"
        assert "NATS not connected" in body["checks"]["nats:connection"][0]["output"]
        assert process.poll() is None  # still running, still retrying

        fresh_nats.start()
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "never became ready after NATS came up"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()[-2000:]


def test_a_taken_http_port_is_a_clean_exit_that_says_why(nats_url: str) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**os.environ, "NATS_URL": nats_url, "EVENTS_HTTP__PORT": str(port)}
        finished = subprocess.run(
            [sys.executable, "-m", "cctelegram_events"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    output = (finished.stdout + finished.stderr).decode()
    assert finished.returncode == 1, output[-2000:]
    assert "address already in use" in output
    assert "http_server_stopped" in output
    assert "Event loop is closed" not in output
    assert "Task exception was never retrieved" not in output
