"""``cctelegram up``: the whole suite on one machine — NATS, five services, the sandbox."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cctelegram_cli.natsserver import NatsServer, NatsServerError, port_in_use
from cctelegram_common.apikeys import generate_key, parse_key
from cctelegram_common.processes import die_with_parent

# Services in start order: auth first (the gateway verifies keys with it), gateway last.
SERVICE_ORDER = ("auth", "events", "notifier", "bridge-manager", "gateway")
ENV_PREFIX = {
    "auth": "AUTH_",
    "events": "EVENTS_",
    "notifier": "NOTIFIER_",
    "bridge-manager": "BRIDGE_MANAGER_",
    "gateway": "GATEWAY_",
}
MODULE = {name: f"cctelegram_{name.replace('-', '_')}" for name in SERVICE_ORDER}
# In the sandbox a demo person gets a private chat when no allowed users are configured.
DEMO_USER_ID = 100001


class UpError(RuntimeError):
    """A start-up failure with one line that names the cause."""


@dataclass
class UpConfig:
    data_dir: Path
    nats_url: str | None
    nats_port: int
    gateway_port: int
    sandbox_port: int
    service_ports_start: int
    bot_token: str | None
    api_base_url: str
    allowed_users: list[int]
    host: str = "127.0.0.1"
    ready_timeout_s: float = 90.0  # a failure threshold only; a quiet machine needs ~5 s

    @property
    def sandbox(self) -> bool:
        return not self.bot_token

    def service_port(self, service: str) -> int:
        if service == "gateway":
            return self.gateway_port
        others = [name for name in SERVICE_ORDER if name != "gateway"]
        return self.service_ports_start + others.index(service)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start NATS, the five services and (without a bot token) the Telegram sandbox",
        description="Run the whole suite locally. Every flag also reads its environment name.",
    )
    env = os.environ
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get("CCTELEGRAM_DATA_DIR", ".cctelegram")),
        help="CCTELEGRAM_DATA_DIR: NATS store, keys, logs (default .cctelegram)",
    )
    parser.add_argument(
        "--nats-url",
        default=env.get("CCTELEGRAM_NATS_URL"),
        help="CCTELEGRAM_NATS_URL: use this NATS instead of starting one",
    )
    parser.add_argument(
        "--nats-port", type=int, default=_env_int("CCTELEGRAM_NATS_PORT", 4222), help="(4222)"
    )
    parser.add_argument(
        "--gateway-port",
        type=int,
        default=_env_int("CCTELEGRAM_GATEWAY_PORT", 8080),
        help="CCTELEGRAM_GATEWAY_PORT (8080)",
    )
    parser.add_argument(
        "--sandbox-port",
        type=int,
        default=_env_int("CCTELEGRAM_SANDBOX_PORT", 8081),
        help="CCTELEGRAM_SANDBOX_PORT (8081)",
    )
    parser.add_argument(
        "--service-ports-start",
        type=int,
        default=_env_int("CCTELEGRAM_SERVICE_PORTS_START", 8091),
        help="CCTELEGRAM_SERVICE_PORTS_START: auth, events, notifier, bridge-manager (8091…)",
    )
    parser.add_argument(
        "--bot-token",
        default=env.get("TELEGRAM_BOT_TOKEN"),
        help="TELEGRAM_BOT_TOKEN: a real bot; without it the sandbox stands in",
    )
    parser.add_argument(
        "--api-base-url",
        default=env.get("TELEGRAM_API_BASE_URL", "https://api.telegram.org"),
        help="TELEGRAM_API_BASE_URL (https://api.telegram.org)",
    )
    parser.add_argument(
        "--allowed-users",
        default=env.get("TELEGRAM_ALLOWED_USERS", ""),
        help="TELEGRAM_ALLOWED_USERS: comma-separated Telegram user ids",
    )
    parser.set_defaults(func=run_up)


def parse_allowed_users(raw: str) -> list[int]:
    users: list[int] = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.lstrip("-").isdigit():
            raise UpError(f"TELEGRAM_ALLOWED_USERS: {part!r} is not a numeric Telegram user id")
        users.append(int(part))
    return users


def config_from_args(args: argparse.Namespace) -> UpConfig:
    return UpConfig(
        data_dir=Path(args.data_dir).resolve(),
        nats_url=args.nats_url or None,
        nats_port=args.nats_port,
        gateway_port=args.gateway_port,
        sandbox_port=args.sandbox_port,
        service_ports_start=args.service_ports_start,
        bot_token=args.bot_token or None,
        api_base_url=args.api_base_url.rstrip("/"),
        allowed_users=parse_allowed_users(args.allowed_users),
    )


# --- secrets in the data dir --------------------------------------------------------------
def _write_private(path: Path, content: str) -> None:
    """Create a file readable by its owner only (the mode is set before anything is written)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content + "\n")
    os.chmod(path, 0o600)


def ensure_secret_file(path: Path, make: str) -> str:
    """Reuse the value in ``path`` or create it with ``make``; always mode 0600."""
    if path.exists():
        value = path.read_text().strip()
        if value:
            os.chmod(path, 0o600)
            return value
    _write_private(path, make)
    return make


def ensure_dev_key(data_dir: Path) -> str:
    """The development admin key: reused across starts, replaced only if the file is bad."""
    path = data_dir / "dev-api-key"
    if path.exists():
        existing = path.read_text().strip()
        if parse_key(existing) is not None:
            os.chmod(path, 0o600)
            return existing
    key = generate_key().full
    _write_private(path, key)
    return key


def sandbox_token() -> str:
    """A well-formed fake bot token for the sandbox (digits:35 url-safe chars)."""
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(26)[:33]}"


# --- child processes ----------------------------------------------------------------------
@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
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
        logs = self.config.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                command,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # no threads exist yet in this process
            )
        child = Child(name, process, log_path, health)
        self.children.append(child)
        return child

    def stop(self, grace_s: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                child.process.wait(5)
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
                if child.process.poll() is not None:
                    raise UpError(
                        f"{name} exited with code {child.process.returncode}: "
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
            if owner.process.poll() is not None:
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


def base_env(config: UpConfig) -> dict[str, str]:
    env = dict(os.environ)
    # A parent's stray settings must not leak between services; ours are explicit below.
    env.pop("NATS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


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


def service_env(
    config: UpConfig, base: dict[str, str], name: str, extra: dict[str, str]
) -> dict[str, str]:
    prefix = ENV_PREFIX[name]
    env = dict(base)
    env.update(extra)
    env[f"{prefix}HTTP__PORT"] = str(config.service_port(name))
    env[f"{prefix}HTTP__HOST"] = config.host
    return env


def start(config: UpConfig) -> tuple[Stack, dict[str, str]]:
    """Start everything; on any failure stop what was started and raise ``UpError``."""
    preflight(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(config.data_dir, 0o700)
    stack = Stack(config)
    try:
        dev_key = ensure_dev_key(config.data_dir)
        ensure_secret_file(config.data_dir / "auth-secret", secrets.token_urlsafe(48))
        ensure_secret_file(config.data_dir / "callback-secret", secrets.token_urlsafe(48))
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
        shared = {
            "NATS_URL": nats_url,
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_API_BASE_URL": api_base,
            "TELEGRAM_ALLOWED_USERS": ",".join(str(user) for user in users),
            "AUTH_SECRET_FILE": str(config.data_dir / "auth-secret"),
            "AUTH_BOOTSTRAP_KEY_FILE": str(config.data_dir / "dev-api-key"),
            "EVENTS_CALLBACK_SECRET_FILE": str(config.data_dir / "callback-secret"),
        }
        services: list[Child] = []
        for name in SERVICE_ORDER:
            if name == "notifier":
                continue  # supervised: bridge-manager owns the notifier process
            port = config.service_port(name)
            extra = dict(shared)
            if name == "bridge-manager":
                extra.update(
                    {
                        "BRIDGE_MANAGER_SUPERVISE": "true",
                        "BRIDGE_MANAGER_SUPERVISOR__BASE_PORT": str(
                            config.service_port("notifier")
                        ),
                        "BRIDGE_MANAGER_SUPERVISOR__NOTIFIERS": "1",
                        "NOTIFIER_HTTP__HOST": config.host,
                    }
                )
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
    info = {
        "mcp_url": f"http://{config.host}:{config.gateway_port}/mcp",
        "api_key": dev_key,
        "nats_url": nats_url,
        "sandbox_url": sandbox_url or "",
    }
    return stack, info


def banner(info: dict[str, str], config: UpConfig) -> str:
    lines = [
        "",
        "CCTelegram is running.",
        f"  MCP URL   {info['mcp_url']}",
        f"  API key   {info['api_key']}   (admin; stored in {config.data_dir / 'dev-api-key'})",
    ]
    if info["sandbox_url"]:
        lines.append(
            f"  Sandbox   {info['sandbox_url']}   (the Telegram stand-in: open it in a browser)"
        )
    lines += [
        f"  NATS      {info['nats_url']}",
        "  Connect Claude Code:",
        f"    claude mcp add --transport http cctelegram {info['mcp_url']} "
        f'--header "Authorization: Bearer {info["api_key"]}"',
        f"  Logs in {config.data_dir / 'logs'} · Ctrl-C stops everything",
        "",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    def raise_interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_up(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except UpError as error:
        print(f"cctelegram up: {error}", file=sys.stderr)
        return 2
    with _signals_raise():
        try:
            stack, info = start(config)
        except UpError as error:
            print(f"cctelegram up: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        try:
            print(banner(info, config), flush=True)
            watch(stack)
        except KeyboardInterrupt:
            # A signal can land anywhere from here on, even while the banner is printed.
            print("stopping…", file=sys.stderr, flush=True)
        finally:
            # Further Ctrl-C / SIGTERM must not cut the orderly stop short (it is bounded).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stack.stop()
    return 0


def watch(stack: Stack) -> None:
    """Report a child that dies; the stack keeps running until Ctrl-C / SIGTERM."""
    reported: set[str] = set()
    while True:
        for child in stack.children:
            code = child.process.poll()
            if code is not None and child.name not in reported:
                reported.add(child.name)
                print(
                    f"cctelegram up: {child.name} exited with code {code}: {child.last_log_line()}",
                    file=sys.stderr,
                    flush=True,
                )
        time.sleep(0.5)
