"""Tests that cross services (a gateway tool against the service it calls, bridge-manager
supervising real notifiers). They reuse the services' own test helpers, which live next to
those services' tests: ``events_harness`` (events) and ``bridge_fleet`` (bridge-manager)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services/events/tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services/bridge-manager/tests"))

from bridge_fleet import bridge_manager, fleet, poll, port_block
from events_harness import events_harness

__all__ = ["bridge_manager", "events_harness", "fleet", "poll", "port_block"]
