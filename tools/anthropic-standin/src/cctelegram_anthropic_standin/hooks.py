"""A tiny HTTP server for Claude Code `"type": "http"` hooks: records each call, answers with a
function of the body. For tests that need to see what Claude Code sends, or to stand in for
a hook endpoint.

    with HookServer(lambda body: pre_tool_use_decision("deny", "not today")) as hooks:
        write_hook_settings(cwd, {"PreToolUse": [http_hook_entry(hooks.url, matcher="Bash")]})
        ...
        hooks.calls[0].body["tool_input"]["command"]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

Answer = Callable[[dict[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class HookCall:
    """One POST Claude Code made to the hook URL."""

    path: str
    headers: Mapping[str, str]
    body: dict[str, Any]


def pre_tool_use_decision(decision: str, reason: str = "") -> dict[str, Any]:
    """The PreToolUse answer: `decision` is `allow`, `deny` or `ask`."""
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    }


def http_hook_entry(
    url: str,
    *,
    matcher: str | None = None,
    headers: Mapping[str, str] | None = None,
    allowed_env_vars: Sequence[str] = (),
    timeout_s: int | None = None,
) -> dict[str, Any]:
    """One matcher group with one http hook, as `.claude/settings.json` spells it."""
    hook: dict[str, Any] = {"type": "http", "url": url}
    if headers:
        hook["headers"] = dict(headers)
    if allowed_env_vars:
        hook["allowedEnvVars"] = list(allowed_env_vars)
    if timeout_s is not None:
        hook["timeout"] = timeout_s
    entry: dict[str, Any] = {"hooks": [hook]}
    if matcher is not None:
        entry["matcher"] = matcher
    return entry


def write_hook_settings(cwd: Path | str, hooks: Mapping[str, list[dict[str, Any]]]) -> Path:
    """Write `<cwd>/.claude/settings.json` holding `{"hooks": hooks}`; returns its path."""
    folder = Path(cwd) / ".claude"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.json"
    path.write_text(json.dumps({"hooks": dict(hooks)}, indent=2))
    return path


class HookServer:
    """Records every POST; answers `answer(body)` as JSON (None: an empty 200 body)."""

    def __init__(self, answer: Answer | None = None, host: str = "127.0.0.1") -> None:
        self.calls: list[HookCall] = []
        self._answer: Answer = answer or (lambda body: {})
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {"_unparsed": raw.decode(errors="replace")}
                with owner._lock:
                    owner.calls.append(HookCall(self.path, dict(self.headers.items()), body))
                reply = owner._answer(body) if isinstance(body, dict) else None
                data = b"" if reply is None else json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        self.url = f"http://{host}:{port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def events(self, name: str) -> list[HookCall]:
        """The calls whose body's `hook_event_name` is `name`."""
        with self._lock:
            return [c for c in self.calls if c.body.get("hook_event_name") == name]

    def __enter__(self) -> HookServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
