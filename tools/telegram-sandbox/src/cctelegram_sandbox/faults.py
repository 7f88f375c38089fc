"""Injected failures: the next N matching Bot API calls fail, stall or lose their connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FaultRule:
    id: int
    times: int
    method: str | None = None
    """Lower-cased method name to match; None matches every method."""
    chat_id: str | None = None
    status: int | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    delay_s: float = 0.0
    raw_body: str | None = None
    content_type: str = "text/html"
    drop_connection_after_record: bool = False
    hits: int = 0

    def matches(self, method: str, chat_id: str | None) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "times_left": self.times,
            "hits": self.hits,
            "method": self.method,
            "chat_id": self.chat_id,
            "status": self.status,
            "description": self.description,
            "parameters": self.parameters,
            "delay_s": self.delay_s,
            "raw_body": self.raw_body,
            "drop_connection_after_record": self.drop_connection_after_record,
        }


class FaultInjector:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, **fields: Any) -> FaultRule:
        rule = FaultRule(id=self._next_id, **fields)
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def take(self, method: str, chat_id: str | None) -> FaultRule | None:
        """The first rule matching this call, used up by one."""
        for rule in self.rules:
            if rule.matches(method, chat_id):
                rule.times -= 1
                rule.hits += 1
                if rule.times <= 0:
                    self.rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        self.rules.clear()


def default_description(status: int) -> str:
    return {
        400: "Bad Request: injected fault",
        401: "Unauthorized",
        403: "Forbidden: injected fault",
        404: "Not Found",
        409: "Conflict: injected fault",
        429: "Too Many Requests: retry after 1",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, f"Error {status}")
