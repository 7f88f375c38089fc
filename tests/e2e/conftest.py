"""End-to-end fixtures: the whole suite started by `cctelegram up` once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cctelegram_testing.suite import RunningSuite, start_suite


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    running = start_suite(Path(tmp_path_factory.mktemp("cctelegram-data")))
    try:
        yield running
    finally:
        running.stop()
