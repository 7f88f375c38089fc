"""The suite as production runs it, on loopback: nats-server with the deploy/nats config and
test-generated passwords, streams created by ``cctelegram provision`` with the admin user,
every service as a real process with its own NATS user, its own inbox and provision=false,
and the Telegram sandbox standing in for Telegram."""

from __future__ import annotations

import contextlib
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import yaml
from deployfiles import DEPLOY, SERVICES, ServiceInfo, env_without_nats, password_variables
from nats.aio.client import Client

from cctelegram_common.apikeys import generate_key
from cctelegram_testing.nats import NatsServer, NatsServerError, free_port
from cctelegram_testing.processes import ServiceProcess

SERVICE_USERS = [service.name for service in SERVICES]
# A private chat the events service may write to (TELEGRAM_ALLOWED_USERS).
PERSON_ID = 424242


def password_variable(user: str) -> str:
    return f"NATS_{user.upper().replace('-', '_')}_PASSWORD"


def generate_passwords() -> dict[str, str]:
    """A fresh random password for every user users.conf declares (never committed).

    nats-server reads a `$VARIABLE`'s value as a config token: a value that starts with a
    digit can parse as a number or an ISO date and stop the server. A letter first avoids
    that (deploy/README.md says the same to operators)."""
    return {name: f"p{secrets.token_hex(24)}" for name in password_variables()}


def compose_environment(service: str) -> dict[str, str]:
    """The environment compose gives a service: the inbox prefix and user come from there."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    environment: dict[str, Any] = compose["services"][service]["environment"]
    return {key: str(value) for key, value in environment.items()}


def inbox_prefix(service: ServiceInfo) -> str:
    return compose_environment(service.name)[f"{service.env_prefix}NATS__INBOX_PREFIX"]


def secured_server(
    directory: Path,
    passwords: dict[str, str],
    *,
    config: str = "nats-server.conf",
    name: str = "nats",
    extra_args: list[str] | None = None,
) -> NatsServer:
    """nats-server with our config; the monitoring port moves to a free one (tests run in
    parallel), the client port and store directory are the test's own."""
    return NatsServer(
        directory / f"{name}-store",
        config_file=DEPLOY / "nats" / config,
        log_file=directory / f"{name}.log",
        extra_args=["-m", str(free_port()), *(extra_args or [])],
        env=passwords,
    )


def start_nats(make: Callable[[], list[NatsServer]], attempts: int = 3) -> list[NatsServer]:
    """Start the servers ``make`` builds; a free port can be taken by another test process
    between choosing and binding it, so a failed start stops them and tries fresh ports."""
    for attempt in range(attempts):
        servers = make()
        try:
            for server in servers:
                server.start()
        except NatsServerError:
            for server in servers:
                server.stop()
            if attempt == attempts - 1:
                raise
            continue
        return servers
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_nats(make: Callable[[], list[NatsServer]]) -> Iterator[list[NatsServer]]:
    servers = start_nats(make)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def provision(urls: list[str], passwords: dict[str, str], replicas: int = 1) -> str:
    """``cctelegram provision`` with the admin user, as the deploy step runs it."""
    env = {
        **env_without_nats(),
        "NATS_USER": "admin",
        "NATS_PASSWORD": passwords[password_variable("admin")],
    }
    command = [sys.executable, "-m", "cctelegram_cli", "provision"]
    command += ["--nats-url", ",".join(urls), "--replicas", str(replicas), "--wait-s", "60"]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def connect_as(user: str, urls: list[str], passwords: dict[str, str]) -> Client:
    """A nats-py connection with one user's credentials and, for a service, its inbox."""
    errors: list[str] = []

    async def remember(error: Exception) -> None:
        errors.append(str(error))

    service = next((s for s in SERVICES if s.name == user), None)
    prefix = inbox_prefix(service) if service is not None else f"_INBOX_{user}"
    connection = await nats.connect(
        servers=urls,
        user=user,
        password=passwords[password_variable(user)],
        inbox_prefix=prefix,
        error_cb=remember,
        connect_timeout=2,
        max_reconnect_attempts=2,
    )
    connection.permission_errors = errors  # type: ignore[attr-defined]
    return connection


def violations(log_file: Path) -> list[tuple[str, str, str]]:
    """(user, kind, subject) of every permissions violation nats-server logged."""
    found: list[tuple[str, str, str]] = []
    # [ERR] 127.0.0.1:55350 - cid:11 - "v2.16.0:python3" - "$G/user:auth" - Publish
    # Violation - Subject "foo.bar"
    pattern = re.compile(
        r'"[^"/]*/user:([^"]+)" - (Publish|Subscription) Violation - Subject "([^"]+)"'
    )
    for line in log_file.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if match:
            user, kind, subject = match.groups()
            found.append((user, kind, subject))
    return found


@dataclass
class SecuredSuite:
    urls: list[str]
    passwords: dict[str, str]
    sandbox_url: str
    sandbox_token: str
    api_key: str
    directory: Path
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)

    def service_env(self, service: ServiceInfo, replicas: int, **extra: str) -> dict[str, str]:
        prefix = service.env_prefix
        user = compose_environment(service.name)[f"{prefix}NATS__USER"]
        env = {
            f"{prefix}NATS__URLS": ",".join(self.urls),
            f"{prefix}NATS__USER": user,
            f"{prefix}NATS__PASSWORD": self.passwords[password_variable(user)],
            f"{prefix}NATS__INBOX_PREFIX": inbox_prefix(service),
            f"{prefix}NATS__PROVISION": "false",
            f"{prefix}NATS__REPLICAS": str(replicas),
            f"{prefix}NATS__CONNECT_TIMEOUT_S": "1",
            f"{prefix}TELEMETRY__ENABLED": "false",
            f"{prefix}SHUTDOWN_GRACE_S": "5",
            "TELEGRAM_BOT_TOKEN": self.sandbox_token,
            "TELEGRAM_API_BASE_URL": self.sandbox_url,
            "TELEGRAM_ALLOWED_USERS": str(PERSON_ID),
            "AUTH_SECRET_FILE": str(self.directory / "auth-secret"),
            "AUTH_BOOTSTRAP_KEY_FILE": str(self.directory / "api-key"),
            "EVENTS_CALLBACK_SECRET_FILE": str(self.directory / "callback-secret"),
        }
        env.update(extra)
        return env

    def start(self, plan: list[tuple[ServiceInfo, dict[str, str]]]) -> list[ServiceProcess]:
        """Start processes in parallel (they take seconds each to import); all or none."""
        started: list[ServiceProcess] = []
        for index, (service, env) in enumerate(plan):
            count = len(self.processes.get(service.name, []))
            process = ServiceProcess(
                service.module,
                service.env_prefix,
                env,
                self.directory / "logs" / f"{service.name}-{count}-{index}.log",
            )
            # Nothing of the test runner's own NATS or service settings leaks in.
            own = {
                key: value
                for key, value in process.env.items()
                if key in env or key.startswith(service.env_prefix) or key == "PYTHONUNBUFFERED"
            }
            process.env = {**env_without_nats(), **own}
            started.append(process)
            self.processes.setdefault(service.name, []).append(process)
        with ThreadPoolExecutor(max_workers=len(started)) as pool:
            outcomes = list(pool.map(_try_start, started))
        failures = [error for error in outcomes if error is not None]
        if failures:
            raise RuntimeError("; ".join(failures))
        return started

    def stop(self) -> None:
        every = [process for group in self.processes.values() for process in group]
        with ThreadPoolExecutor(max_workers=max(1, len(every))) as pool:
            list(pool.map(lambda p: p.stop(grace_s=10), every))


def _try_start(process: ServiceProcess) -> str | None:
    try:
        process.start(ready_timeout_s=60)
    except Exception as error:
        return f"{process.module}: {error}"
    return None


@contextlib.contextmanager
def secured_suite(
    directory: Path, urls: list[str], passwords: dict[str, str], sandbox: Any
) -> Iterator[SecuredSuite]:
    """Secrets on disk (private files), the person's chat in the sandbox, no process yet."""
    directory.mkdir(parents=True, exist_ok=True)
    api_key = generate_key().full
    for name, value in (
        ("api-key", api_key),
        ("auth-secret", secrets.token_urlsafe(48)),
        ("callback-secret", secrets.token_urlsafe(48)),
    ):
        path = directory / name
        path.write_text(value)
        path.chmod(0o600)
    sandbox.create_chat(
        id=PERSON_ID,
        type="private",
        user={"id": PERSON_ID, "first_name": "Pat", "username": "pat"},
    )
    suite = SecuredSuite(
        urls=urls,
        passwords=passwords,
        sandbox_url=sandbox.url,
        sandbox_token=sandbox.token,
        api_key=api_key,
        directory=directory,
    )
    try:
        yield suite
    finally:
        suite.stop()
