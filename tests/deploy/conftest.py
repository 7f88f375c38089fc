"""Fixtures of the deploy tests; the readers they use live in ``deployfiles.py``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The test modules here import ``deployfiles`` (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from deployfiles import (
    DEPLOY,
    SERVICES,
    ServiceInfo,
    read_nats_conf,
)


@pytest.fixture(scope="session")
def services() -> dict[str, ServiceInfo]:
    return {service.name: service for service in SERVICES}


@pytest.fixture(scope="session")
def nats_users() -> dict[str, dict[str, Any]]:
    """users.conf as data: user name → its entry (password reference, permissions)."""
    conf = read_nats_conf(DEPLOY / "nats" / "users.conf")
    return {entry["user"]: entry for entry in conf["authorization"]["users"]}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded
