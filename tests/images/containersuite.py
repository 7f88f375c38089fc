"""Starts the suite from its container images with testcontainers: NATS, the five services and
the sandbox, each read-only with a tmpfs /tmp, non-root, capabilities dropped, on the host
network, wired as `cctelegram up` wires the processes (secret files mounted read-only)."""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# The services, their settings prefixes, the demo chat and the fake bot token exactly as
# `cctelegram up` has them: the containers are wired the way it wires the processes.
from cctelegram_cli.up.config import DEMO_USER_ID, ENV_PREFIX, SERVICE_ORDER, sandbox_token

TAG = os.environ.get("CCTELEGRAM_IMAGE_TAG", "dev")
SERVICE_UID = 10001
READY_TIMEOUT_S = 120.0  # a failure threshold only


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Suite:
    """The running containers and what a client needs to reach them."""

    containers: dict[str, Any]  # name -> testcontainers DockerContainer
    ports: dict[str, int]
    secrets: dict[str, str]  # name -> value that must never appear in a log
    api_key: str
    cold_start_s: float
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}/mcp"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sandbox']}"

    def health_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/health/ready"


def hardened(image: str) -> Any:
    """A container as production runs it: read-only root, tmpfs /tmp, non-root, no caps."""
    from testcontainers.core.container import DockerContainer

    return (
        DockerContainer(f"cctelegram/{image}:{TAG}")
        .with_tmpfs_mount("/tmp")
        .with_kwargs(
            network_mode="host",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            user=f"{SERVICE_UID}:{SERVICE_UID}",
            labels={"cctelegram.test": "images"},
        )
    )


def health_status(container: Any) -> str:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    return str(wrapped.attrs["State"].get("Health", {}).get("Status", "none"))


def wait_until(predicate: Any, what: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout_s:.0f} s")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def write_secret(directory: Path, name: str, value: str) -> Path:
    """A secret file readable by the containers' user only (mounted read-only)."""
    path = directory / name
    path.write_text(value)
    os.chown(path, SERVICE_UID, SERVICE_UID)
    path.chmod(0o400)
    return path


def service_container(
    name: str, suite_env: dict[str, str], ports: dict[str, int], secret_dir: Path
) -> Any:
    prefix = ENV_PREFIX[name]
    container = hardened(name).with_volume_mapping(str(secret_dir), "/run/secrets", "ro")
    env = {
        **suite_env,
        f"{prefix}HTTP__HOST": "127.0.0.1",
        f"{prefix}HTTP__PORT": str(ports[name]),
        # The image's HEALTHCHECK reads this URL: same service, the port of this run.
        "CCTELEGRAM_HEALTH_URL": f"http://127.0.0.1:{ports[name]}/health",
    }
    for key, value in env.items():
        container = container.with_env(key, value)
    return container


def start_suite(secret_dir: Path) -> Suite:
    from cctelegram_common.apikeys import generate_key

    ports = {name: free_port() for name in (*SERVICE_ORDER, "sandbox", "nats", "nats-monitor")}
    token = sandbox_token()
    api_key = generate_key().full
    values = {
        "bot token": token,
        "api key": api_key,
        "auth secret": secrets.token_urlsafe(48),
        "callback secret": secrets.token_urlsafe(48),
    }
    # As `cctelegram up` wires them: the secrets it keeps in files are mounted files here.
    write_secret(secret_dir, "auth-secret", values["auth secret"])
    write_secret(secret_dir, "dev-api-key", api_key)
    write_secret(secret_dir, "callback-secret", values["callback secret"])
    suite_env = {
        "NATS_URL": f"nats://127.0.0.1:{ports['nats']}",
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{ports['sandbox']}",
        "TELEGRAM_ALLOWED_USERS": str(DEMO_USER_ID),
        "AUTH_SECRET_FILE": "/run/secrets/auth-secret",
        "AUTH_BOOTSTRAP_KEY_FILE": "/run/secrets/dev-api-key",
        "EVENTS_CALLBACK_SECRET_FILE": "/run/secrets/callback-secret",
    }
    containers: dict[str, Any] = {}
    started = time.monotonic()
    try:
        nats = (
            hardened("nats")
            .with_command(
                [
                    *("-js", "-sd", "/tmp/jetstream", "-a", "127.0.0.1"),
                    *("-p", str(ports["nats"]), "-m", str(ports["nats-monitor"])),
                ]
            )
            .with_env(
                "CCTELEGRAM_HEALTH_URL",
                f"http://127.0.0.1:{ports['nats-monitor']}/healthz?js-enabled-only=true",
            )
        )
        containers["nats"] = nats.start()
        sandbox = (
            hardened("sandbox")
            .with_command(
                ["--host", "127.0.0.1", "--port", str(ports["sandbox"]), "--token", token]
            )
            .with_env(
                "CCTELEGRAM_HEALTH_URL", f"http://127.0.0.1:{ports['sandbox']}/sandbox/api/stats"
            )
        )
        containers["sandbox"] = sandbox.start()
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ports['nats-monitor']}/healthz"), "NATS ready"
        )
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{ports['sandbox']}/sandbox/api/stats"), "sandbox"
        )
        httpx.post(
            f"http://127.0.0.1:{ports['sandbox']}/sandbox/api/chats",
            json={
                "id": DEMO_USER_ID,
                "type": "private",
                "user": {"id": DEMO_USER_ID, "first_name": "Demo", "username": "demo"},
            },
            timeout=5,
        ).raise_for_status()
        for name in SERVICE_ORDER:
            containers[name] = service_container(name, suite_env, ports, secret_dir).start()
        for name in SERVICE_ORDER:
            wait_until(
                lambda name=name: http_ok(f"http://127.0.0.1:{ports[name]}/health/ready"),
                f"{name} ready",
            )
        cold_start_s = time.monotonic() - started
    except BaseException:
        for name, container in containers.items():
            logs = b"".join(container.get_logs()).decode(errors="replace")
            print(f"--- {name} (last lines)\n{logs[-3000:]}")
            container.stop()
        raise
    return Suite(containers, ports, values, api_key, cold_start_s)
