"""The per-service isolation check of ``make test``.

``python -m cctelegram_testing.isolation check`` reads the tree (no install, under a second):

- a service's tests import only ``cctelegram_common``, ``cctelegram_testing``, the service
  itself and their own helper modules, and name no other workspace package as a string (which
  is how a test would start another service as a process: ``python -m cctelegram_auth``);
- no ``src/`` tree holds a ``testing`` module or package;
- no ``src/`` tree outside the dev-only members runs a package manager (a module that both
  names one, ``apt-get``, ``npm``, ``pip``, ..., and imports ``subprocess``).

``python -m cctelegram_testing.isolation run SERVICE [pytest args]`` installs one service in a
throwaway virtualenv (``uv sync --frozen --package cctelegram-SERVICE``: the service, its
dependencies and its ``dev`` group, which is ``cctelegram-testing`` plus what its tests need)
and runs that service's tests with it. ``run-all`` does it for every service, one after the
other, and reports each. ``make test`` runs the services' tests *only* this way, so proving
isolation costs the virtualenvs (about two seconds each from uv's cache), not a second run.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
ALWAYS_ALLOWED = frozenset({"cctelegram_common", "cctelegram_testing"})
# Members never installed in an image: test tooling may run package managers there.
DEV_ONLY = frozenset({"cctelegram_testing", "cctelegram_anthropic_standin"})
PACKAGE_MANAGERS = frozenset(
    {"apt", "apt-get", "dpkg", "npm", "npx", "pip", "pip3", "yum", "dnf", "apk", "brew"}
)


@dataclass(frozen=True)
class Member:
    root: Path
    directory: Path  # services/gateway
    distribution: str  # cctelegram-gateway
    module: str  # cctelegram_gateway

    @property
    def is_service(self) -> bool:
        return self.directory.parent.name == "services"


def members(root: Path = ROOT) -> list[Member]:
    """Every workspace member with a ``src/<module>`` package."""
    found = []
    for pyproject in sorted(root.glob("*/*/pyproject.toml")):
        directory = pyproject.parent
        if directory.parent.name not in {"libs", "services", "tools"}:
            continue
        distribution = tomllib.loads(pyproject.read_text())["project"]["name"]
        for package in sorted((directory / "src").glob("cctelegram_*")):
            if package.is_dir():
                found.append(Member(root, directory, distribution, package.name))
    return found


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _strings(tree: ast.AST) -> set[str]:
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_findings(service: Member, workspace: list[Member]) -> list[str]:
    """What ties ``service``'s tests to another workspace package."""
    allowed = ALWAYS_ALLOWED | {service.module}
    others = {member.module for member in workspace} - allowed
    findings = []
    for path in sorted((service.directory / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(service.root)
        for name in sorted(_imports(tree)):
            if name.startswith("cctelegram_") and name not in allowed:
                findings.append(f"{where}: imports {name}")
        for text in sorted(_strings(tree)):
            for other in sorted(others):
                if other in text.replace("-", "_").split():
                    findings.append(f"{where}: names {other} ({text[:60]!r})")
    return findings


def src_findings(workspace: list[Member]) -> list[str]:
    """Test modules in ``src/`` trees, and package-manager code outside the dev-only members."""
    findings = []
    for member in workspace:
        package = member.directory / "src" / member.module
        for path in sorted(package.rglob("*")):
            if path.stem == "testing" and (path.suffix == ".py" or path.is_dir()):
                findings.append(f"{path.relative_to(member.root)}: a testing module in src/")
        if member.module in DEV_ONLY:
            continue
        for path in sorted(package.rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            managers = PACKAGE_MANAGERS & _strings(tree)
            if managers and "subprocess" in _imports(tree):
                findings.append(
                    f"{path.relative_to(member.root)}: runs a package manager "
                    f"({', '.join(sorted(managers))})"
                )
    return findings


def check(root: Path = ROOT) -> list[str]:
    workspace = members(root)
    findings = src_findings(workspace)
    for member in workspace:
        if member.is_service:
            findings += test_findings(member, workspace)
    return findings


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise SystemExit("uv not found: set UV or put uv on PATH")
    return found


def run(service: Member, pytest_args: list[str]) -> int:
    """Install ``service`` alone in a throwaway virtualenv and run its tests there."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    with tempfile.TemporaryDirectory(prefix=f"cctg-{service.directory.name}-") as scratch:
        venv = Path(scratch) / "venv"
        env["UV_PROJECT_ENVIRONMENT"] = str(venv)
        started = time.monotonic()
        sync = [_uv(), "sync", "--frozen", "--quiet", "--package", service.distribution]
        done = subprocess.run(sync, cwd=ROOT, env=env, check=False)  # noqa: S603
        if done.returncode != 0:
            print(f"isolation: `{' '.join(sync[1:])}` failed", file=sys.stderr)
            return done.returncode
        installed = time.monotonic() - started
        tests = str(service.directory.relative_to(ROOT) / "tests")
        command = [str(venv / "bin" / "python"), "-m", "pytest", tests, *pytest_args]
        print(f"== {service.distribution} alone (installed in {installed:.1f} s): {tests}")
        status = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode  # noqa: S603
        # 5: the selection (-k ...) matched no test of this service, not a failure.
        return 0 if status == 5 else status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cctelegram_testing.isolation")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="static checks of the tree")
    one = commands.add_parser("run", help="one service's tests in a throwaway virtualenv")
    one.add_argument("service", help="directory name under services/, e.g. gateway")
    commands.add_parser("run-all", help="every service's tests, each in its own virtualenv")
    args, pytest_args = parser.parse_known_args(argv)
    if args.command == "check":
        findings = check()
        for finding in findings:
            print(f"isolation: {finding}", file=sys.stderr)
        return 1 if findings else 0
    services = [member for member in members() if member.is_service]
    if args.command == "run":
        chosen = [member for member in services if member.directory.name == args.service]
        if not chosen:
            parser.error(f"no service {args.service!r}")
        return run(chosen[0], pytest_args)
    failed = [s.distribution for s in services if run(s, pytest_args) != 0]
    if failed:
        print(f"isolation: tests failed alone: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
