"""The shipped Prometheus config, alert rules and Grafana dashboard are valid and refer only to
metrics the suite exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from cctelegram_common.testing import ensure_debian_package

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"

# The metrics issue 8 promises, plus the process collectors and Prometheus's own `up`.
PROMISED_METRICS = {
    "http_requests_total",
    "http_request_duration_seconds",
    "mcp_tool_calls_total",
    "bridge_connection_status",
    "authentication_failures_total",
    "rate_limit_violations_total",
    "security_events_total",
    "telegram_messages_sent_total",
    "telegram_api_errors_total",
    "approval_requests_total",
    "approval_decision_seconds",
    "task_completions_total",
    "outbox_pending",
    "outbox_oldest_message_age_seconds",
    "delivery_latency_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
}
_PROMQL_WORDS = {
    "sum", "by", "rate", "max", "min", "histogram_quantile", "clamp_min", "deriv", "absent",
    "vector", "and", "or", "le", "job", "status", "route", "code", "tool", "outcome", "up",
    "without", "on", "avg", "count", "increase", "irate",
}


def metric_names(expression: str) -> set[str]:
    """Identifiers in a PromQL expression that name metrics (not functions or labels)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expression)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_ranges = re.sub(r"(?<![\w.])\d+(\.\d+)?(e[-+]?\d+)?", "", without_ranges)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_ranges)) - _PROMQL_WORDS
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names if not name.isdigit()}


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(
        (OBSERVABILITY / "grafana" / "dashboards" / "cctelegram-overview.json").read_text()
    )
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_dashboard_and_alerts_refer_only_to_promised_metrics() -> None:
    import yaml  # type: ignore[import-untyped]

    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    expressions = dashboard_expressions() + [
        rule["expr"] for group in rules["groups"] for rule in group["rules"]
    ]
    used = set().union(*(metric_names(expression) for expression in expressions))
    assert used, "no metric found in any expression"
    assert used <= PROMISED_METRICS, used - PROMISED_METRICS


@pytest.fixture(scope="module")
def promtool() -> str:
    path = ensure_debian_package("promtool", "prometheus")
    if path is None:
        pytest.skip("promtool is missing and cannot be installed here (needs root + apt)")
    return path


def test_promtool_accepts_scrape_config_and_rules(promtool: str) -> None:
    for args in (
        ["check", "config", str(OBSERVABILITY / "prometheus.yml")],
        ["check", "rules", str(OBSERVABILITY / "alerts.yml")],
    ):
        result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
