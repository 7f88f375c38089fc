"""Fixtures of the bridge-manager tests (defined in ``bridge_fleet.py``, dev-only)."""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules here import ``bridge_fleet`` (pytest runs with --import-mode=importlib);
# the cross-service tests in tests/integration/ reuse it the same way.
sys.path.insert(0, str(Path(__file__).parent))

from bridge_fleet import bridge_manager, fleet, poll, port_block

__all__ = ["bridge_manager", "fleet", "poll", "port_block"]
