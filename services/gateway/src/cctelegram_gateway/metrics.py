"""The gateway's Prometheus metrics: tool calls, authentication failures, limits, security."""

from __future__ import annotations

from prometheus_client import Counter

from cctelegram_common.metrics import registry

TOOL_CALLS = Counter(
    "mcp_tool_calls_total",
    "Tool calls by tool and outcome (MCP and the REST twins run the same tools)",
    ["tool", "outcome"],
    registry=registry,
)
AUTHENTICATION_FAILURES = Counter(
    "authentication_failures_total",
    "Requests refused for a missing, malformed, unknown, revoked or expired API key",
    ["reason"],
    registry=registry,
)
RATE_LIMIT_VIOLATIONS = Counter(
    "rate_limit_violations_total",
    "Calls refused by their key's rate limit",
    registry=registry,
)
RATE_LIMIT_FALLBACKS = Counter(
    "rate_limit_budget_fallbacks_total",
    "Calls limited by this replica's own bucket because the shared budget (KV) was unreachable",
    registry=registry,
)
SECURITY_EVENTS = Counter(
    "security_events_total",
    "Refused or suspicious requests by kind (auth failures, denials, limits, bad origins)",
    ["kind"],
    registry=registry,
)

# Outcomes are a closed set so the label stays bounded whatever a tool raises.
OUTCOMES = frozenset(
    {"ok", "invalid", "forbidden", "rate_limited", "not_found", "unavailable", "conflict", "error"}
)
# Reasons the auth service and the front door give; anything else is counted as "invalid".
AUTH_REASONS = frozenset(
    {"missing", "malformed", "unknown", "wrong_secret", "revoked", "expired", "invalid"}
)


def outcome_of(code: str) -> str:
    return code if code in OUTCOMES else "error"


def count_authentication_failure(reason: str) -> None:
    AUTHENTICATION_FAILURES.labels(reason if reason in AUTH_REASONS else "invalid").inc()


def initialise(tool_names: list[str]) -> None:
    """Series exist at zero from the start, so dashboards and alerts see them at once."""
    for name in tool_names:
        TOOL_CALLS.labels(name, "ok")
    for reason in AUTH_REASONS:
        AUTHENTICATION_FAILURES.labels(reason)
