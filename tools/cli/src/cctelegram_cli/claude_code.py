"""``cctelegram claude-code setup``: wire a project's Claude Code to the gateway.

Merges our HTTP hooks into ``DIR/.claude/settings.json`` — hooks already there are kept, a
second run changes nothing, ``--remove`` takes out only ours (recognised by their URL) — and
prints the ``claude mcp add`` line and the ``--permission-prompt-tool`` flag. The API key is
never written: the hooks send ``Authorization: Bearer $CCTELEGRAM_API_KEY``, interpolated by
Claude Code from the environment (``allowedEnvVars``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

HOOK_PATH = "/v1/hooks/claude-code"
KEY_ENV = "CCTELEGRAM_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8080"
# Which hook events go to the gateway, and the matcher for the tool events.
GATED_MATCHER = "Bash|Write|Edit|MultiEdit|NotebookEdit|AskUserQuestion|ExitPlanMode|mcp__.*"
HOOK_EVENTS: dict[str, str | None] = {
    "PreToolUse": GATED_MATCHER,
    "Notification": None,
    "Stop": None,
    "SubagentStop": None,
    "SessionEnd": None,
}
# Claude Code's default hook timeout; the gateway answers before it (policy fallback).
HOOK_TIMEOUT_S = 600


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    return url[: -len("/mcp")] if url.endswith("/mcp") else url


def our_hook(hook_url: str, event: str) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "type": "http",
        "url": hook_url,
        "headers": {"Authorization": f"Bearer ${KEY_ENV}"},
        "allowedEnvVars": [KEY_ENV],
    }
    if event in ("PreToolUse", "Stop"):
        hook["timeout"] = HOOK_TIMEOUT_S
    return hook


def _is_ours(hook: object) -> bool:
    return isinstance(hook, dict) and str(hook.get("url", "")).endswith(HOOK_PATH)


def without_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with every hook of ours removed (and groups left empty by that)."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return settings
    kept_events: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            kept_events[event] = groups
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                remaining = [hook for hook in group["hooks"] if not _is_ours(hook)]
                if not remaining:
                    continue
                group = {**group, "hooks": remaining}
            kept_groups.append(group)
        if kept_groups:
            kept_events[event] = kept_groups
    result = {**settings, "hooks": kept_events}
    if not kept_events:
        result.pop("hooks")
    return result


def with_ours(settings: dict[str, Any], hook_url: str) -> dict[str, Any]:
    """The settings with exactly one hook of ours per event (idempotent)."""
    result = without_ours(settings)
    hooks: dict[str, Any] = dict(result.get("hooks") or {})
    for event, matcher in HOOK_EVENTS.items():
        group: dict[str, Any] = {"hooks": [our_hook(hook_url, event)]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks[event] = [*(hooks.get(event) or []), group]
    return {**result, "hooks": hooks}


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        loaded = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as error:
        raise SystemExit(f"cctelegram: {path} is not valid JSON ({error}); fix it first") from None
    if not isinstance(loaded, dict):
        raise SystemExit(f"cctelegram: {path} must hold a JSON object")
    return loaded


def setup(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    if not directory.is_dir():
        print(f"cctelegram: {directory} is not a directory", file=sys.stderr)
        return 2
    base = _base_url(args.url)
    hook_url = f"{base}{HOOK_PATH}"
    path = directory / ".claude" / "settings.json"
    current = _read(path)
    updated = without_ours(current) if args.remove else with_ours(current, hook_url)
    if updated != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(updated, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    if args.remove:
        print(f"Removed the CCTelegram hooks from {path}.")
        return 0
    project = directory.name
    print(f"Hooks written to {path} (PreToolUse, Notification, Stop, SubagentStop, SessionEnd).")
    print(f"They send the key from ${KEY_ENV}: export it before starting claude.\n")
    print("MCP tools (notifications, approvals, request_permission):")
    print(
        f"  claude mcp add --transport http cctelegram {base}/mcp "
        f'--header "Authorization: Bearer ${KEY_ENV}" '
        f'--header "X-CCTelegram-Project: {project}"'
    )
    print("Headless runs gated from Telegram (claude -p):")
    print("  claude -p '…' --permission-prompt-tool mcp__cctelegram__request_permission")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "claude-code", help="connect Claude Code: hooks, MCP server, permission prompt tool"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    setup_parser = actions.add_parser(
        "setup", help="merge the CCTelegram hooks into DIR/.claude/settings.json"
    )
    setup_parser.add_argument(
        "--url",
        default=os.environ.get("CCTELEGRAM_URL", DEFAULT_URL),
        help="the gateway's URL (default: $CCTELEGRAM_URL or %(default)s)",
    )
    setup_parser.add_argument("--dir", default=".", help="the project folder (default: .)")
    setup_parser.add_argument(
        "--remove", action="store_true", help="take the CCTelegram hooks out again"
    )
    setup_parser.set_defaults(func=setup)
