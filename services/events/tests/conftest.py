"""Fixtures for the events service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cctelegram_events.testing import EventsHarness, running_events


@pytest.fixture
async def events_harness(nats_url: str) -> AsyncIterator[EventsHarness]:
    async with running_events(nats_url) as harness:
        yield harness
