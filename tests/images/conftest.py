"""The suite from its container images (``make test-images``). Collected only with
``CCTG_TEST_IMAGES=1`` (``make test-images`` sets it after ``make images``), so ``make test``
needs no Docker. The helpers live in ``containersuite.py``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The test module imports ``containersuite`` (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from containersuite import Suite, start_suite

if os.environ.get("CCTG_TEST_IMAGES") != "1":
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # no registry to pull it from
    secret_dir = tmp_path_factory.mktemp("secrets")
    secret_dir.chmod(0o755)
    running = start_suite(secret_dir)
    try:
        yield running
    finally:
        for container in running.containers.values():
            container.stop()
