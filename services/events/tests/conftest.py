"""Fixtures for the events service tests; the harness, its fixture and the in-memory fakes live
in ``events_harness.py`` next to them (dev-only, never in the package)."""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules here import ``events_harness`` (pytest runs with --import-mode=importlib);
# the cross-service tests in tests/integration/ reuse it the same way.
sys.path.insert(0, str(Path(__file__).parent))

from events_harness import events_harness

__all__ = ["events_harness"]
