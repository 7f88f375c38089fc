"""``make dist``: wheels of every workspace package, a ``cctelegram`` distribution that pulls in
the services, the sandbox and the CLI, and the locked third-party wheels, all in ``dist/``, so
``pip install --no-index --find-links dist/ cctelegram`` (or ``uv pip install``) needs nothing
else. The version comes from one place: the root pyproject's; every package must carry it.

Usage: python deploy/package/build.py [--out dist] [--no-deps]   (UV names the uv binary)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What `cctelegram` installs: everything `cctelegram up` runs.
META_DEPENDENCIES = (
    "cctelegram-cli",
    "cctelegram-gateway",
    "cctelegram-auth",
    "cctelegram-events",
    "cctelegram-notifier",
    "cctelegram-bridge-manager",
    "cctelegram-sandbox",
)
META_PYPROJECT = """\
[project]
name = "cctelegram"
version = "{version}"
description = "CCTelegram, the whole suite in one install: `cctelegram up`"
requires-python = ">=3.11"
readme = "README.md"
dependencies = [{dependencies}]

[project.scripts]
cctelegram = "cctelegram_cli.__main__:main"

[build-system]
requires = ["uv_build>=0.9,<0.14"]
build-backend = "uv_build"
"""
META_README = """\
# cctelegram

The CCTelegram suite in one install: NATS (embedded), the five services, the Telegram sandbox
and the `cctelegram` command.

    uvx cctelegram up          # or: pipx install cctelegram && cctelegram up
"""


def run(*command: str, cwd: Path = ROOT) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(
            f"{' '.join(command[:3])} ... failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def version() -> str:
    """The root pyproject's version; every workspace package must carry the same."""
    wanted = str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    wrong = []
    for pyproject in sorted(ROOT.glob("*/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        if project["version"] != wanted:
            wrong.append(f"{project['name']} {project['version']}")
    if wrong:
        sys.exit(f"versions differ from the root's {wanted}: {', '.join(wrong)}")
    return wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    parser.add_argument("--no-deps", action="store_true", help="only the suite's own wheels")
    options = parser.parse_args()
    uv = os.environ.get("UV") or shutil.which("uv") or sys.exit("uv not found (set UV)")
    out: Path = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("cctelegram*"):
        old.unlink()
    current = version()

    run(uv, "build", "--all-packages", "--wheel", "--out-dir", str(out))
    with tempfile.TemporaryDirectory() as scratch:
        meta = Path(scratch) / "cctelegram"
        (meta / "src" / "cctelegram").mkdir(parents=True)
        dependencies = ", ".join(f'"{name}=={current}"' for name in META_DEPENDENCIES)
        (meta / "pyproject.toml").write_text(
            META_PYPROJECT.format(version=current, dependencies=dependencies)
        )
        (meta / "README.md").write_text(META_README)
        (meta / "src" / "cctelegram" / "__init__.py").write_text(
            f'"""The CCTelegram suite (a distribution that installs its parts)."""\n\n'
            f'__version__ = "{current}"\n'
        )
        run(uv, "build", "--wheel", "--out-dir", str(out), str(meta), cwd=meta)

    if not options.no_deps:
        # The locked third-party wheels for this platform, so the install needs no index.
        requirements = run(
            uv, "export", "--frozen", "--all-packages", "--no-dev", "--no-emit-workspace",
            "--no-hashes", "--no-header", "--quiet",
        )  # fmt: skip
        pinned = [line for line in requirements.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write("\n".join(pinned) + "\n")
        try:
            run(
                uv, "tool", "run", "--python", sys.executable, "--from", "pip",
                "pip", "download", "--quiet",
                "--no-deps", "--only-binary=:all:", "--dest", str(out), "-r", handle.name,
            )  # fmt: skip
        finally:
            os.unlink(handle.name)

    wheels = sorted(out.glob("*.whl"))
    ours = [wheel.name for wheel in wheels if wheel.name.startswith("cctelegram")]
    print(f"dist: {len(ours)} CCTelegram wheels (version {current}), {len(wheels)} wheels in all")
    for name in ours:
        print(f"  {name}")
    print(f"install: pip install --no-index --find-links {out} cctelegram")


if __name__ == "__main__":
    main()
