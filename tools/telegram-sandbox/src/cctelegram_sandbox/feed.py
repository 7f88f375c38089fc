"""Change notifications for the web page's live view (server-sent events)."""

from __future__ import annotations

import asyncio


class ChangeListener:
    def __init__(self) -> None:
        self.changes: set[str] = set()
        self.event = asyncio.Event()

    def drain(self) -> list[str]:
        changes = sorted(self.changes)
        self.changes.clear()
        self.event.clear()
        return changes


class ChangeFeed:
    """Tells every listener which chats (or "chats", "calls", ...) changed; costs nothing idle."""

    def __init__(self) -> None:
        self.listeners: set[ChangeListener] = set()
        self.closing = False

    def publish(self, topic: str) -> None:
        for listener in self.listeners:
            listener.changes.add(topic)
            listener.event.set()

    def subscribe(self) -> ChangeListener:
        listener = ChangeListener()
        self.listeners.add(listener)
        return listener

    def unsubscribe(self, listener: ChangeListener) -> None:
        self.listeners.discard(listener)

    def close(self) -> None:
        self.closing = True
        for listener in self.listeners:
            listener.event.set()
