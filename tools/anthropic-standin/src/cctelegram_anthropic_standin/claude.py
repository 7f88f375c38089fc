"""Run the real Claude Code CLI (`claude -p`) offline against the stand-in.

Each run gets its own temporary HOME, an offline environment and, when `mcp_url` is given, an
MCP config file (in that HOME, mode 0600, so the API key is never on a command line) naming one
HTTP server `cctelegram`. Project hooks come from `<cwd>/.claude/settings.json`, which the
caller writes; `-p` mode skips the workspace trust dialog, so they apply without acceptance.

    result = run_claude(f"{marker('notify')} say hi", cwd=tmp_path, standin_url=standin.url,
                        mcp_url=suite.mcp_url, api_key=suite.api_key,
                        allowed_tools=["mcp__cctelegram__send_telegram_message"], timeout_s=120)
    assert result.exit_code == 0, result.describe()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cctelegram_testing.claude_code import DEFAULT_VERSION, ca_env, ensure_claude_code

MCP_SERVER_NAME = "cctelegram"
DUMMY_ANTHROPIC_KEY = "sk-ant-standin-0000000000000000"
OFFLINE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}
# What the child inherits from the test process; everything else is set explicitly, so a
# developer's own ANTHROPIC_* / CLAUDE_* settings never leak into a run.
_INHERITED = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class ClaudeResult:
    """A finished `claude` run. `output` is the parsed `--output-format json` result, if any."""

    exit_code: int
    stdout: str
    stderr: str
    wall_s: float
    timed_out: bool
    home: Path | None
    argv: tuple[str, ...] = field(repr=False)

    @property
    def output(self) -> dict[str, Any] | None:
        """The JSON result object (`{"type": "result", "result": ..., "is_error": ...}`)."""
        for line in reversed(self.stdout.strip().splitlines()):
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if isinstance(parsed, dict) and parsed.get("type") == "result":
                return parsed
        return None

    @property
    def result_text(self) -> str | None:
        """The final assistant text (`result` field of the JSON output)."""
        output = self.output
        text = output.get("result") if output else None
        return text if isinstance(text, str) else None

    @property
    def events(self) -> list[dict[str, Any]]:
        """With `--output-format stream-json`: every JSON line of stdout."""
        parsed: list[dict[str, Any]] = []
        for line in self.stdout.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                parsed.append(item)
        return parsed

    def describe(self) -> str:
        """For assertion messages: exit code, wall time and the output tails."""
        return (
            f"claude exited {self.exit_code} after {self.wall_s:.1f} s"
            f"{' (timed out)' if self.timed_out else ''}\n"
            f"--- stdout (tail) ---\n{self.stdout[-3000:]}\n"
            f"--- stderr (tail) ---\n{self.stderr[-3000:]}"
        )


def mcp_config(mcp_url: str, api_key: str | None, name: str = MCP_SERVER_NAME) -> dict[str, Any]:
    server: dict[str, Any] = {"type": "http", "url": mcp_url}
    if api_key:
        server["headers"] = {"Authorization": f"Bearer {api_key}"}
    return {"mcpServers": {name: server}}


def claude_env(
    standin_url: str, home: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of one offline run."""
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    env.update(ca_env())
    env.update(OFFLINE_ENV)
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "ANTHROPIC_BASE_URL": standin_url,
            "ANTHROPIC_API_KEY": DUMMY_ANTHROPIC_KEY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    if extra:
        env.update(extra)
    return env


def _secret_values(env: Mapping[str, str] | None) -> list[str]:
    """Values of extra env vars whose names say they are secrets (scrubbed from the output)."""
    markers = ("KEY", "TOKEN", "SECRET", "PASSWORD")
    return [
        value
        for name, value in (env or {}).items()
        if len(value) >= 8 and any(m in name.upper() for m in markers)
    ]


class ClaudeProcess:
    """A `claude -p` run in progress (from `start_claude`). `wait()` returns its ClaudeResult."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        home: Path,
        keep_home: bool,
        timeout_s: float,
        secrets: Iterable[str],
    ) -> None:
        self.argv = tuple(argv)
        self.home = home
        self._keep_home = keep_home
        self._timeout_s = timeout_s
        self._secrets = [s for s in secrets if s]
        self._started = time.monotonic()
        self._result: ClaudeResult | None = None
        self._out = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._err = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,  # own process group: a timeout kills its children too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, timeout_s: float | None = None) -> ClaudeResult:
        """Wait for the end. At the run's own deadline (`timeout_s` of the start, counted from
        the spawn) the process group is killed and the result says `timed_out`. A shorter
        `timeout_s` here only bounds this wait: it raises `TimeoutError` and the run goes on."""
        if self._result is not None:
            return self._result
        remaining = self._timeout_s - (time.monotonic() - self._started)
        timed_out = False
        if timeout_s is not None and timeout_s < remaining:
            try:
                self.process.wait(timeout=max(timeout_s, 0))
            except subprocess.TimeoutExpired as exc:
                raise TimeoutError(f"claude (pid {self.pid}) still running") from exc
        else:
            try:
                self.process.wait(timeout=max(remaining, 0))
            except subprocess.TimeoutExpired:
                timed_out = True
                self.kill()
        wall = time.monotonic() - self._started
        self._out.seek(0)
        self._err.seek(0)
        stdout = self._scrub(self._out.read())
        stderr = self._scrub(self._err.read())
        self._out.close()
        self._err.close()
        if not self._keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        self._result = ClaudeResult(
            exit_code=self.process.returncode,
            stdout=stdout,
            stderr=stderr,
            wall_s=wall,
            timed_out=timed_out,
            home=self.home if self._keep_home else None,
            argv=self.argv,
        )
        return self._result

    def kill(self) -> None:
        """Kill the run's process group (claude and whatever it started)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def __enter__(self) -> ClaudeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self.wait()


def start_claude(
    prompt: str,
    *,
    cwd: Path | str,
    standin_url: str,
    mcp_url: str | None = None,
    api_key: str | None = None,
    permission_prompt_tool: str | None = None,
    allowed_tools: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 180,
    output_format: str = "json",
    claude_bin: Path | str | None = None,
    version: str = DEFAULT_VERSION,
    keep_home: bool = False,
) -> ClaudeProcess:
    """Start `claude -p PROMPT` offline and return at once; `.wait()` gives the result.

    `mcp_url`/`api_key`: the MCP server `cctelegram` over HTTP with a Bearer header, loaded
    with `--strict-mcp-config` (no other MCP server). `permission_prompt_tool`: a full tool name
    such as `mcp__cctelegram__request_permission`. `allowed_tools`: `--allowedTools` rules.
    `env`: extra environment (e.g. `CCTELEGRAM_API_KEY` for hook headers). `keep_home`: keep
    the temp HOME (transcripts under `.claude/projects/`) and return its path in the result.
    """
    binary = Path(claude_bin) if claude_bin is not None else ensure_claude_code(version)
    home = Path(tempfile.mkdtemp(prefix="cctelegram-claude-home-"))
    argv: list[str] = [str(binary), "-p", prompt, "--output-format", output_format]
    if output_format == "stream-json":
        argv.append("--verbose")  # the CLI refuses stream-json in -p mode without it
    if mcp_url is not None:
        config_path = home / "mcp-config.json"
        config_path.touch(mode=0o600)
        config_path.write_text(json.dumps(mcp_config(mcp_url, api_key)))
        argv += ["--mcp-config", str(config_path), "--strict-mcp-config"]
    if permission_prompt_tool:
        argv += ["--permission-prompt-tool", permission_prompt_tool]
    if allowed_tools:
        argv += ["--allowedTools", ",".join(allowed_tools)]
    argv += list(extra_args)
    return ClaudeProcess(
        argv,
        cwd=Path(cwd),
        env=claude_env(standin_url, home, env),
        home=home,
        keep_home=keep_home,
        timeout_s=timeout_s,
        secrets=[api_key or "", *_secret_values(env)],
    )


def run_claude(
    prompt: str,
    *,
    cwd: Path | str,
    standin_url: str,
    mcp_url: str | None = None,
    api_key: str | None = None,
    permission_prompt_tool: str | None = None,
    allowed_tools: Sequence[str] = (),
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 180,
    output_format: str = "json",
    claude_bin: Path | str | None = None,
    version: str = DEFAULT_VERSION,
    keep_home: bool = False,
) -> ClaudeResult:
    """`start_claude(...).wait()`: run `claude -p PROMPT` offline to the end."""
    return start_claude(
        prompt,
        cwd=cwd,
        standin_url=standin_url,
        mcp_url=mcp_url,
        api_key=api_key,
        permission_prompt_tool=permission_prompt_tool,
        allowed_tools=allowed_tools,
        extra_args=extra_args,
        env=env,
        timeout_s=timeout_s,
        output_format=output_format,
        claude_bin=claude_bin,
        version=version,
        keep_home=keep_home,
    ).wait()


@dataclass(frozen=True)
class ClaudeRunner:
    """`run_claude` / `start_claude` with the binary, the stand-in and (optionally) the MCP
    server bound once; the pytest fixture `claude` is one of these.

        result = claude.with_mcp(suite.mcp_url, suite.api_key).run(prompt, cwd=tmp_path)
    """

    claude_bin: Path
    standin_url: str
    mcp_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = 180
    # Every process started through this runner (and its with_mcp copies): close() ends them.
    started: list[ClaudeProcess] = field(default_factory=list, repr=False, compare=False)

    def with_mcp(self, mcp_url: str, api_key: str | None) -> ClaudeRunner:
        return replace(self, mcp_url=mcp_url, api_key=api_key)

    def start(
        self,
        prompt: str,
        *,
        cwd: Path | str,
        permission_prompt_tool: str | None = None,
        allowed_tools: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        output_format: str = "json",
        keep_home: bool = False,
    ) -> ClaudeProcess:
        process = start_claude(
            prompt,
            cwd=cwd,
            standin_url=self.standin_url,
            mcp_url=self.mcp_url,
            api_key=self.api_key,
            permission_prompt_tool=permission_prompt_tool,
            allowed_tools=allowed_tools,
            extra_args=extra_args,
            env=env,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            output_format=output_format,
            claude_bin=self.claude_bin,
            keep_home=keep_home,
        )
        self.started.append(process)
        return process

    def close(self) -> None:
        """Kill what is still running and release every process's files (fixture teardown)."""
        for process in self.started:
            process.kill()
            process.wait()
        self.started.clear()

    def run(
        self,
        prompt: str,
        *,
        cwd: Path | str,
        permission_prompt_tool: str | None = None,
        allowed_tools: Sequence[str] = (),
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        output_format: str = "json",
        keep_home: bool = False,
    ) -> ClaudeResult:
        return self.start(
            prompt,
            cwd=cwd,
            permission_prompt_tool=permission_prompt_tool,
            allowed_tools=allowed_tools,
            extra_args=extra_args,
            env=env,
            timeout_s=timeout_s,
            output_format=output_format,
            keep_home=keep_home,
        ).wait()
