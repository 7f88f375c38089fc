"""What `cctelegram up` runs with: its flags (each with its environment name), the secrets it
keeps in the data dir, and the environment each service gets."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cctelegram_common.apikeys import generate_key, parse_key

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


# --- flags --------------------------------------------------------------------------------
def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def ensure_secrets(data_dir: Path) -> str:
    """The dev key, auth's secret and the callback secret, each kept across starts; returns
    the dev key."""
    dev_key = ensure_dev_key(data_dir)
    ensure_secret_file(data_dir / "auth-secret", secrets.token_urlsafe(48))
    ensure_secret_file(data_dir / "callback-secret", secrets.token_urlsafe(48))
    return dev_key


def sandbox_token() -> str:
    """A well-formed fake bot token for the sandbox (digits:35 url-safe chars)."""
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(26)[:33]}"


def extra_bot_tokens() -> list[str]:
    """The other bots' tokens (TELEGRAM_BOT_TOKENS, the routes file's bots): the sandbox
    serves each of them too."""
    from cctelegram_common.routes_file import load_routes_file, parse_bot_tokens

    tokens: dict[str, str] = {}
    routes = load_routes_file()
    if routes is not None:
        tokens.update(routes.bots)
    tokens.update(parse_bot_tokens(os.environ.get("TELEGRAM_BOT_TOKENS", "")))
    return [token for name, token in tokens.items() if name != "default"]


# --- the services' environment ------------------------------------------------------------
def base_env(config: UpConfig) -> dict[str, str]:
    env = dict(os.environ)
    # A parent's stray settings must not leak between services; ours are explicit below.
    env.pop("NATS_URL", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def shared_env(
    config: UpConfig, *, nats_url: str, bot_token: str, api_base_url: str, users: list[int]
) -> dict[str, str]:
    """What every service is told: where NATS and Telegram are, who may use it, the secrets."""
    return {
        "NATS_URL": nats_url,
        "TELEGRAM_BOT_TOKEN": bot_token,
        "TELEGRAM_API_BASE_URL": api_base_url,
        "TELEGRAM_ALLOWED_USERS": ",".join(str(user) for user in users),
        "AUTH_SECRET_FILE": str(config.data_dir / "auth-secret"),
        "AUTH_BOOTSTRAP_KEY_FILE": str(config.data_dir / "dev-api-key"),
        "EVENTS_CALLBACK_SECRET_FILE": str(config.data_dir / "callback-secret"),
    }


def supervisor_env(config: UpConfig) -> dict[str, str]:
    """bridge-manager supervises the notifier: one process, on the notifier's port."""
    return {
        "BRIDGE_MANAGER_SUPERVISE": "true",
        "BRIDGE_MANAGER_SUPERVISOR__BASE_PORT": str(config.service_port("notifier")),
        "BRIDGE_MANAGER_SUPERVISOR__NOTIFIERS": "1",
        "NOTIFIER_HTTP__HOST": config.host,
    }


def service_env(
    config: UpConfig, base: dict[str, str], name: str, extra: dict[str, str]
) -> dict[str, str]:
    prefix = ENV_PREFIX[name]
    env = dict(base)
    env.update(extra)
    env[f"{prefix}HTTP__PORT"] = str(config.service_port(name))
    env[f"{prefix}HTTP__HOST"] = config.host
    return env
