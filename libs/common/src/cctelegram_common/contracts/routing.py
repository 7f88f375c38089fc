"""Routing: which bot, chat and forum topic an event or approval card goes to.

A :class:`RouteRule` is kept in the ``cctg_routes`` KV bucket (key = its name). Every rule
whose match fits an event is a route for it (fan-out). Without rules — or when none matches —
events go where they always went: every allowed user's private chat, through the default bot.
"""

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity

BOT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
DEFAULT_BOT = "default"
RULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.LOW,
    Severity.MEDIUM,
    Severity.HIGH,
    Severity.CRITICAL,
)


class TopicMode(StrEnum):
    """A forum topic per project, or per Claude Code session, created on first use."""

    PER_PROJECT = "per-project"
    PER_SESSION = "per-session"


def bot_or_none(bot: str | None) -> str | None:
    """Named bots travel by name; the default bot (``TELEGRAM_BOT_TOKEN``) as None."""
    return None if bot in (None, "", DEFAULT_BOT) else bot


class RouteRule(Contract):
    """One rule: what it matches, and the route (bot, chat, topic) it sends matches to."""

    name: str = Field(pattern=RULE_NAME_PATTERN, description="Unique name (the KV key)")
    clients: tuple[str, ...] = Field(default=(), description="API clients; empty = any")
    projects: tuple[str, ...] = Field(
        default=(), description="Projects (the Claude Code session's, or a send's `project`)"
    )
    types: tuple[EventType, ...] = Field(
        default=(), description="Event types (approval_request for cards); empty = any"
    )
    min_severity: Severity | None = Field(
        default=None, description="Only events at least this severe (low < … < critical)"
    )
    bot: str = Field(
        default=DEFAULT_BOT, pattern=BOT_NAME_PATTERN, description="Which bot sends ('default')"
    )
    chat_id: int = Field(description="Target chat (a user's id, or a group's negative id)")
    topic: TopicMode | int | None = Field(
        default=None,
        description="Forum topic: per-project, per-session, a fixed message_thread_id, or none",
    )
    approvers: tuple[int, ...] | None = Field(
        default=None,
        description="Who may decide cards sent on this route; None = the request's approvers",
    )
    quorum: int = Field(
        default=1, ge=1, le=10, description="Approvals needed to approve (any deny rejects)"
    )
    escalate_after_minutes: float | None = Field(
        default=None, gt=0, le=7 * 24 * 60, description="Unanswered this long: escalate"
    )
    escalate_to: str | None = Field(
        default=None, pattern=RULE_NAME_PATTERN, description="Rule whose route gets the card"
    )
    description: str = Field(default="", max_length=300)

    @field_validator("projects", "clients")
    @classmethod
    def _non_empty(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if any(not value.strip() or len(value) > 100 for value in values):
            raise ValueError("each entry has 1-100 characters")
        return values

    @field_validator("topic", mode="before")
    @classmethod
    def _topic(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "RouteRule":
        if isinstance(self.topic, int) and self.topic <= 0:
            raise ValueError("a fixed topic is a positive message_thread_id")
        if self.topic is not None and self.chat_id > 0:
            raise ValueError("topics exist only in forum supergroups (negative chat ids)")
        if (self.escalate_to is None) != (self.escalate_after_minutes is None):
            raise ValueError("escalate_to and escalate_after_minutes go together")
        if self.escalate_to == self.name:
            raise ValueError("a rule cannot escalate to itself")
        return self

    def matches(
        self, client_id: str, project: str | None, event_type: EventType, severity: Severity
    ) -> bool:
        if self.clients and client_id not in self.clients:
            return False
        if self.projects and project not in self.projects:
            return False
        if self.types and event_type not in self.types:
            return False
        return self.min_severity is None or SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(
            self.min_severity
        )


class ForumTopicRef(Contract):
    """A forum topic the notifier finds or creates (``createForumTopic``) on first use."""

    key: str = Field(max_length=200, description="project:<name> or session:<key>")
    name: str = Field(min_length=1, max_length=128, description="The topic's title")


class RouteList(Contract):
    rules: tuple[RouteRule, ...] = ()


class RouteListRequest(Contract):
    """RPC ``cctg.events.rpc.routes_list``."""


class RouteAddRequest(Contract):
    """RPC ``cctg.events.rpc.routes_add``: create or replace the rule of that name."""

    rule: RouteRule
    actor: str = Field(default="", max_length=200)


class RouteRemoveRequest(Contract):
    """RPC ``cctg.events.rpc.routes_remove``."""

    name: str = Field(pattern=RULE_NAME_PATTERN)
    actor: str = Field(default="", max_length=200)


class RoutesFile(Contract):
    """``CCTELEGRAM_ROUTES_FILE`` (YAML): bots (name → token) and the rules to seed."""

    bots: dict[str, str] = Field(default_factory=dict, description="Bot name → token")
    routes: tuple[RouteRule, ...] = ()

    @field_validator("bots")
    @classmethod
    def _bot_names(cls, bots: dict[str, str]) -> dict[str, str]:
        import re

        for name in bots:
            if not re.fullmatch(BOT_NAME_PATTERN, name):
                raise ValueError(f"bot name {name!r}: lower-case letters, digits, _ and -")
        return bots
