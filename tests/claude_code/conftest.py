"""Fixtures for tests with the real Claude Code CLI, run offline against the Anthropic stand-in.

`claude_bin` installs the pinned CLI once per session into a cache folder outside the repo
(set CCTELEGRAM_SKIP_CLAUDE_CODE=1 to skip these tests on a machine without Node.js/npm).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test modules here import ``people`` (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from cctelegram_anthropic_standin import Standin
from cctelegram_anthropic_standin.claude import ClaudeRunner
from cctelegram_testing.claude_code import InstallError, ensure_claude_code
from cctelegram_testing.suite import RunningSuite, start_suite


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    if os.environ.get("CCTELEGRAM_SKIP_CLAUDE_CODE") == "1":
        pytest.skip("CCTELEGRAM_SKIP_CLAUDE_CODE=1")
    try:
        return ensure_claude_code()
    except InstallError as exc:
        pytest.fail(
            f"could not install Claude Code (set CCTELEGRAM_SKIP_CLAUDE_CODE=1 to skip): {exc}"
        )


@pytest.fixture
def standin() -> Iterator[Standin]:
    with Standin() as running:
        yield running


@pytest.fixture
def claude(claude_bin: Path, standin: Standin) -> Iterator[ClaudeRunner]:
    """Runs `claude -p` against this test's stand-in; `.with_mcp(url, key)` adds the gateway.
    Processes still running at the end of the test are killed."""
    runner = ClaudeRunner(claude_bin, standin.url)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    running = start_suite(Path(tmp_path_factory.mktemp("cctelegram-data")))
    try:
        yield running
    finally:
        running.stop()
