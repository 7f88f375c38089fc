"""The processes of `cctelegram up`: the ports checked first, then nats-server, the sandbox and
the services started in order, each waited for until ready, watched, and stopped in reverse."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cctelegram_cli.natsserver import NatsServer, NatsServerError, port_in_use
from cctelegram_cli.up.config import (
    DEMO_USER_ID,
    MODULE,
    SERVICE_ORDER,
    UpConfig,
    UpError,
    base_env,
    ensure_secret_file,
    ensure_secrets,
    extra_bot_tokens,
    sandbox_token,
    service_env,
    shared_env,
    supervisor_env,
)
from cctelegram_common.processes import ChildProcess, ProcessSpec


@dataclass(frozen=True)
class Endpoints:
    """What a started stack offers its user."""

    mcp_url: str
    api_key: str
    nats_url: str
    sandbox_url: str  # "" with a real bot


@dataclass
class Child:
    name: str
    process: ChildProcess
    log_path: Path
    health_url: str | None

    def last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = [
                line for line in self.log_path.read_text(errors="replace").splitlines() if line
            ]
            for line in reversed(lines):
                if '"level": "error"' in line or "Error" in line or "error" in line:
                    return line[-300:]
            if lines:
                return lines[-1][-300:]
        return "(no output)"


@dataclass
class Stack:
    """Everything `up` started, stopped in reverse order."""

    config: UpConfig
    children: list[Child] = field(default_factory=list)
    nats: NatsServer | None = None

    def spawn(
        self, name: str, command: list[str], env: dict[str, str], health: str | None
    ) -> Child:
        log_path = self.config.data_dir / "logs" / f"{name}.log"
        process = ProcessSpec(
            command,
            env=env,
            stdout=log_path,
            stdin_devnull=True,
            new_session=True,
            die_with_parent=True,  # no threads exist yet in this process
        ).start()
        child = Child(name, process, log_path, health)
        self.children.append(child)
        return child

    def stop(self, grace_s: float = 15.0) -> None:
        # Every child is told at once; the grace is one deadline for all of them.
        for child in reversed(self.children):
            child.process.terminate()
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            child.process.wait_or_kill(max(0.1, deadline - time.monotonic()))
        self.children.clear()
        if self.nats is not None:
            self.nats.stop()
            self.nats = None


def wait_ready(stack: Stack, children: list[Child], timeout_s: float) -> None:
    """Until every child's readiness endpoint passes (or warns); fail fast on an exit."""
    pending = {child.name: child for child in children if child.health_url}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while pending:
            for name, child in list(pending.items()):
                if not child.process.alive:
                    raise UpError(
                        f"{name} exited with code {child.process.exit_code}: "
                        f"{child.last_log_line()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = client.get(child.health_url or "")
                    if response.status_code == 200:
                        del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                names = ", ".join(sorted(pending))
                detail = "; ".join(
                    f"{name}: {_readiness_reason(client, pending[name])}" for name in pending
                )
                raise UpError(f"not ready after {timeout_s:.0f}s: {names} ({detail})")
            time.sleep(0.1)


def wait_url_ready(url: str, name: str, timeout_s: float, owner: Child) -> None:
    """Readiness of a process `up` did not start itself (the supervised notifier)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if not owner.process.alive:
                raise UpError(f"{owner.name} exited: {owner.last_log_line()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(0.1)
    raise UpError(f"{name} not ready after {timeout_s:.0f}s: {owner.last_log_line()}")


def _readiness_reason(client: httpx.Client, child: Child) -> str:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        body = client.get(child.health_url or "").json()
        for name, entries in (body.get("checks") or {}).items():
            for entry in entries:
                if entry.get("status") == "fail":
                    return f"{name} {entry.get('output', '')}".strip()
    return child.last_log_line()


def preflight(config: UpConfig) -> None:
    """Every port we will bind must be free; say which one is not, and what to set."""
    wanted: list[tuple[int, str]] = [(config.gateway_port, "CCTELEGRAM_GATEWAY_PORT")]
    wanted += [
        (config.service_port(name), f"CCTELEGRAM_SERVICE_PORTS_START ({name})")
        for name in SERVICE_ORDER
        if name != "gateway"
    ]
    if config.nats_url is None:
        wanted.append((config.nats_port, "CCTELEGRAM_NATS_PORT"))
    if config.sandbox:
        wanted.append((config.sandbox_port, "CCTELEGRAM_SANDBOX_PORT"))
    seen: set[int] = set()
    for port, setting in wanted:
        if port in seen:
            raise UpError(f"port {port} is configured twice; change {setting}")
        seen.add(port)
        if port_in_use(port, config.host):
            raise UpError(
                f"port {port} is already in use (another `cctelegram up`?); "
                f"stop it or set {setting}"
            )


def setup_sandbox(stack: Stack, env: dict[str, str], token: str) -> str:
    config = stack.config
    url = f"http://{config.host}:{config.sandbox_port}"
    stack.spawn(
        "sandbox",
        [
            sys.executable,
            "-m",
            "cctelegram_sandbox",
            "--host",
            config.host,
            "--port",
            str(config.sandbox_port),
            "--token",
            token,
            # Telegram ignores parameters it does not know; the local stack refuses them so
            # a stray one shows up during development instead of never.
            "--strict-params",
            # Several bots (TELEGRAM_BOT_TOKENS, the routes file's bots): the sandbox serves
            # each of them too, each bot with chats of its own.
            *(part for extra in extra_bot_tokens() for part in ("--token", extra)),
        ],
        env,
        f"{url}/sandbox/api/stats",
    )
    wait_ready(stack, [stack.children[-1]], 15)
    users = config.allowed_users or [DEMO_USER_ID]
    with httpx.Client(base_url=url, timeout=5) as client:
        existing = {chat.get("id") for chat in _chat_list(client.get("/sandbox/api/chats").json())}
        for user_id in users:
            if user_id in existing:
                continue
            name = "Demo" if user_id == DEMO_USER_ID else f"User {user_id}"
            client.post(
                "/sandbox/api/chats",
                json={
                    "id": user_id,
                    "type": "private",
                    "user": {"id": user_id, "first_name": name, "username": f"user{user_id}"},
                },
            ).raise_for_status()
    return url


def _chat_list(payload: object) -> list[dict[str, object]]:
    if isinstance(payload, dict):
        payload = payload.get("chats") or payload.get("result") or []
    return [chat for chat in payload if isinstance(chat, dict)] if isinstance(payload, list) else []


def start(config: UpConfig) -> tuple[Stack, Endpoints]:
    """Start everything; on any failure stop what was started and raise ``UpError``."""
    preflight(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)
    stack = Stack(config)
    try:
        dev_key = ensure_secrets(config.data_dir)
        if config.nats_url is None:
            stack.nats = NatsServer(
                config.data_dir / "nats",
                port=config.nats_port,
                host=config.host,
                log_file=config.data_dir / "logs" / "nats.log",
            )
            (config.data_dir / "logs").mkdir(parents=True, exist_ok=True)
            stack.nats.start()
            nats_url = stack.nats.url
        else:
            nats_url = config.nats_url
        env = base_env(config)
        users = config.allowed_users
        sandbox_url = None
        if config.sandbox:
            token = ensure_secret_file(config.data_dir / "sandbox-token", sandbox_token())
            sandbox_url = setup_sandbox(stack, env, token)
            users = users or [DEMO_USER_ID]
            api_base = sandbox_url
        else:
            token = config.bot_token or ""
            api_base = config.api_base_url
        shared = shared_env(
            config, nats_url=nats_url, bot_token=token, api_base_url=api_base, users=users
        )
        services: list[Child] = []
        for name in SERVICE_ORDER:
            if name == "notifier":
                continue  # supervised: bridge-manager owns the notifier process
            port = config.service_port(name)
            extra = dict(shared)
            if name == "bridge-manager":
                extra.update(supervisor_env(config))
            services.append(
                stack.spawn(
                    name,
                    [sys.executable, "-m", MODULE[name]],
                    service_env(config, env, name, extra),
                    f"http://{config.host}:{port}/health/ready",
                )
            )
        wait_ready(stack, services, config.ready_timeout_s)
        wait_url_ready(
            f"http://{config.host}:{config.service_port('notifier')}/health/ready",
            "notifier (supervised by bridge-manager)",
            config.ready_timeout_s,
            next(child for child in services if child.name == "bridge-manager"),
        )
    except (UpError, NatsServerError, OSError, httpx.HTTPError) as error:
        stack.stop(grace_s=5)
        raise UpError(str(error)) from error
    except BaseException:
        stack.stop(grace_s=5)
        raise
    endpoints = Endpoints(
        mcp_url=f"http://{config.host}:{config.gateway_port}/mcp",
        api_key=dev_key,
        nats_url=nats_url,
        sandbox_url=sandbox_url or "",
    )
    return stack, endpoints


def watch(stack: Stack) -> Iterator[tuple[Child, int]]:
    """Each child that dies, once, with its exit code; polls until the caller stops it."""
    reported: set[str] = set()
    while True:
        for child in stack.children:
            code = child.process.exit_code
            if code is not None and child.name not in reported:
                reported.add(child.name)
                yield child, code
        time.sleep(0.5)
