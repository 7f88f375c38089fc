"""Install a pinned `@anthropic-ai/claude-code` from npm into a cache folder outside the repo
(for tests/claude_code, bench/claude_code.py and the anthropic stand-in's ``claude`` runner).

Idempotent (a marker file written last says the install is complete) and safe when several
processes call it at once (an exclusive `fcntl` lock on a file beside the install folder).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

DEFAULT_VERSION = "2.1.332"
PACKAGE = "@anthropic-ai/claude-code"
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_MARKER = ".cctelegram-install-complete"


class InstallError(RuntimeError):
    """npm could not install the CLI (the message carries npm's exit code and output tail)."""


def cache_root() -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/cctelegram-test`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cctelegram-test"


def install_dir(version: str = DEFAULT_VERSION) -> Path:
    return cache_root() / f"claude-code-{version}"


def ca_env() -> dict[str, str]:
    """Environment that makes npm and node trust the system CA bundle (proxies re-sign TLS)."""
    if not SYSTEM_CA_BUNDLE.is_file():
        return {}
    bundle = str(SYSTEM_CA_BUNDLE)
    return {"NODE_EXTRA_CA_CERTS": bundle, "npm_config_cafile": bundle}


def ensure_claude_code(version: str = DEFAULT_VERSION, *, timeout_s: float = 900) -> Path:
    """Return the path of the `claude` executable of `version`, installing it first if needed.

    The install lives in `${XDG_CACHE_HOME:-~/.cache}/cctelegram-test/claude-code-<version>`.
    A second caller waits on the lock and then finds the finished install.
    """
    target = install_dir(version)
    binary = target / "node_modules" / ".bin" / "claude"
    if (target / _MARKER).is_file() and binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("npm is not on PATH: install Node.js 18+ to run the Claude Code tests")
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f"claude-code-{version}.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (target / _MARKER).is_file() and binary.exists():
                return binary
            _npm_install(npm, target, version, timeout_s)
            if not binary.exists():
                raise InstallError(f"npm finished but {binary} does not exist")
            (target / _MARKER).write_text(f"{PACKAGE}@{version} {time.time():.0f}\n")
            return binary
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_install(npm: str, target: Path, version: str, timeout_s: float) -> None:
    if target.exists():  # a previous attempt died half-way: start clean
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "package.json").write_text('{"name": "cctelegram-claude-code", "private": true}\n')
    env = {**os.environ, **ca_env()}
    command = [
        npm,
        "install",
        "--prefix",
        str(target),
        "--no-audit",
        "--no-fund",
        "--save-exact",
        "--loglevel=error",
        f"{PACKAGE}@{version}",
    ]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command,
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"npm install {PACKAGE}@{version} took over {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise InstallError(f"npm install {PACKAGE}@{version} exited {done.returncode}: {tail}")
