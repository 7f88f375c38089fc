"""What `cctelegram up` prints: the block a new user reads once everything runs, and the one
line that names a failure or a child that died."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from cctelegram_cli.up.config import UpConfig

if TYPE_CHECKING:
    from cctelegram_cli.up.stack import Endpoints


def banner(endpoints: Endpoints, config: UpConfig) -> str:
    lines = [
        "",
        "CCTelegram is running.",
        f"  MCP URL   {endpoints.mcp_url}",
        f"  API key   {endpoints.api_key}   (admin; stored in {config.data_dir / 'dev-api-key'})",
    ]
    if endpoints.sandbox_url:
        lines.append(
            f"  Sandbox   {endpoints.sandbox_url}   (the Telegram stand-in: open it in a browser)"
        )
    lines += [
        f"  NATS      {endpoints.nats_url}",
        "  Connect Claude Code:",
        f"    claude mcp add --transport http cctelegram {endpoints.mcp_url} "
        f'--header "Authorization: Bearer {endpoints.api_key}"',
        f"  Logs in {config.data_dir / 'logs'} · Ctrl-C stops everything",
        "",
    ]
    return "\n".join(lines)


def print_banner(endpoints: Endpoints, config: UpConfig) -> None:
    print(banner(endpoints, config), flush=True)


def print_error(error: BaseException) -> None:
    print(f"cctelegram up: {error}", file=sys.stderr)


def print_exited(name: str, code: int, last_log_line: str) -> None:
    print(
        f"cctelegram up: {name} exited with code {code}: {last_log_line}",
        file=sys.stderr,
        flush=True,
    )


def print_stopping() -> None:
    print("stopping…", file=sys.stderr, flush=True)
