"""Observability: the shipped Prometheus config, alert rules and Grafana dashboard are valid and
refer only to exported metrics; on the running suite one approval is one trace across every hop,
the promised metrics exist and move, and a real Prometheus scrapes them."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry import propagate
from opentelemetry.propagators.composite import CompositePropagator

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.debian import ensure_debian_package
from cctelegram_testing.nats import free_port
from cctelegram_testing.otlp import OtlpReceiver, ReceivedSpan
from cctelegram_testing.suite import RunningSuite, start_suite

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
    "sum",
    "by",
    "rate",
    "max",
    "min",
    "histogram_quantile",
    "clamp_min",
    "deriv",
    "absent",
    "vector",
    "and",
    "or",
    "le",
    "job",
    "status",
    "route",
    "code",
    "tool",
    "outcome",
    "up",
    "without",
    "on",
    "avg",
    "count",
    "increase",
    "irate",
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


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


@pytest.fixture(scope="module")
def suite(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> Iterator[RunningSuite]:
    running = start_suite(
        Path(tmp_path_factory.mktemp("observed")),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        yield running
    finally:
        running.stop()


async def call_tool(suite: RunningSuite, name: str, arguments: dict[str, Any]) -> Any:
    """One call with the official client, carrying no trace context of this process: tests
    that ran in-process before set up tracing here with nothing sampled, and a non-sampled
    parent in ``_meta`` would (rightly) keep the gateway from sampling the request."""
    with no_trace_context():
        return await _call_tool(suite, name, arguments)


@contextlib.contextmanager
def no_trace_context() -> Iterator[None]:
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([]))
    try:
        yield
    finally:
        propagate.set_global_textmap(previous)


async def _call_tool(suite: RunningSuite, name: str, arguments: dict[str, Any]) -> Any:
    async with (
        httpx2.AsyncClient(
            headers={"Authorization": f"Bearer {suite.api_key}"},
            timeout=httpx2.Timeout(30, read=150),
        ) as http,
        Client(streamable_http_client(suite.mcp_url, http_client=http)) as client,
    ):
        return await client.call_tool(name, arguments)


def wait_for_card(suite: RunningSuite, needle: str, timeout_s: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        messages = httpx.get(
            f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5
        ).json()
        for message in messages:
            if needle in (message.get("text") or "") and message.get("reply_markup"):
                return dict(message)
        time.sleep(0.1)
    raise AssertionError(f"no card with {needle!r}")


def spans_of_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


@pytest.mark.e2e
async def test_one_approval_is_one_trace_and_the_decision_links_to_it(
    suite: RunningSuite, receiver: OtlpReceiver
) -> None:
    created = await call_tool(
        suite,
        "send_approval_request",
        {"title": "Deploy trace-check", "description": "ship it?", "options": ["Yes", "No"]},
    )
    assert not created.is_error, created
    approval_id = created.structured_content["approval_id"]
    card = wait_for_card(suite, "Deploy trace-check")
    httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/{card['message_id']}/press",
        json={"user_id": DEMO_USER_ID, "text": "Yes"},
        timeout=5,
    ).raise_for_status()
    decided = await call_tool(
        suite, "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": 30}
    )
    assert decided.structured_content["status"] != "pending", decided

    deadline = time.monotonic() + 20
    request_trace: list[ReceivedSpan] = []
    while time.monotonic() < deadline:
        spans = receiver.snapshot()
        tool_spans = [
            span
            for span in spans
            if span.service.endswith("gateway") and "send_approval_request" in span.name
        ]
        if tool_spans:
            request_trace = spans_of_trace(spans, tool_spans[0].trace_id)
            services = {span.service for span in request_trace}
            has_bot_api = any(span.name == "telegram sendMessage" for span in request_trace)
            if {"cctelegram-gateway", "cctelegram-events", "cctelegram-notifier"} <= services and (
                has_bot_api
            ):
                break
        time.sleep(0.3)
    services = {span.service for span in request_trace}
    assert {"cctelegram-gateway", "cctelegram-events", "cctelegram-notifier"} <= services, services
    assert any(span.name == "telegram sendMessage" for span in request_trace)
    # The press arrives later, in a trace of its own (Telegram's update), linked back.
    trace_id = request_trace[0].trace_id

    def linked() -> list[ReceivedSpan]:
        return [
            span
            for span in receiver.snapshot()
            if span.trace_id != trace_id and any(link[0] == trace_id for link in span.links)
        ]

    while not linked() and time.monotonic() < deadline + 10:
        time.sleep(0.2)  # the press span is exported on its own schedule
    assert linked(), "no span of the press/decision links to the request's trace"
    secrets = [suite.api_key, (suite.data_dir / "sandbox-token").read_text().strip()]
    for span in receiver.snapshot():
        blob = span.name + repr(span.attributes)
        assert not any(secret in blob for secret in secrets), span


def scrape(url: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in httpx.get(url, timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def total(values: dict[str, float], metric: str) -> float:
    return sum(value for name, value in values.items() if name.split("{")[0] == metric)


@pytest.mark.e2e
def test_failed_authentication_moves_its_counter_by_one(suite: RunningSuite) -> None:
    metrics_url = f"http://127.0.0.1:{suite.ports['gateway']}/metrics"
    before = total(scrape(metrics_url), "authentication_failures_total")
    response = httpx.post(
        suite.mcp_url, headers={"Authorization": "Bearer cctg_nope"}, json={}, timeout=5
    )
    assert response.status_code == 401
    after = total(scrape(metrics_url), "authentication_failures_total")
    assert after - before == 1


@pytest.mark.e2e
def test_prometheus_scrapes_every_promised_metric(suite: RunningSuite, tmp_path: Path) -> None:
    prometheus = ensure_debian_package("prometheus", "prometheus")
    if prometheus is None:
        pytest.skip("prometheus is missing and cannot be installed here (needs root + apt)")
    jobs = ["gateway", "auth", "events", "notifier", "bridge-manager"]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        + "".join(
            f"  - job_name: {job}\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{suite.ports[job]}']}}]\n"
            for job in jobs
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wanted = set().union(*(metric_names(expr) for expr in dashboard_expressions())) & (
        PROMISED_METRICS
    )
    try:
        deadline = time.monotonic() + 60
        names: set[str] = set()
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/label/__name__/values", timeout=2
                ).json()
                names = {
                    name.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum")
                    for name in answer.get("data", [])
                }
            except (httpx.HTTPError, ValueError):
                pass  # not listening yet, or still starting ("Service Unavailable", not JSON)
            if wanted <= names:
                break
            time.sleep(1)
        assert wanted <= names, wanted - names
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
        health = {t["labels"]["job"]: t["health"] for t in targets["data"]["activeTargets"]}
        assert health == dict.fromkeys(jobs, "up"), health
    finally:
        process.terminate()
        process.wait(20)


@pytest.mark.e2e
async def test_no_key_or_token_in_the_audit_trail(suite: RunningSuite) -> None:
    """After the traffic above (tool calls, a failed authentication, an approval), the audit
    stream names clients and actions but never a key, a token or message text."""
    import nats

    client = await nats.connect(suite.nats_url)
    try:
        js = client.jetstream()
        subscription = await js.subscribe("cctg.audit.>", ordered_consumer=True)
        records: list[bytes] = []
        with contextlib.suppress(TimeoutError):
            while True:
                records.append((await subscription.next_msg(timeout=2)).data)
    finally:
        await client.close()
    assert records, "no audit record at all"
    bot_token = (suite.data_dir / "sandbox-token").read_text().strip()
    for record in records:
        text = record.decode()
        assert suite.api_key not in text
        assert bot_token.split(":", 1)[1] not in text
        assert "cctg_" not in text.replace('"cctg.', "")  # no key-shaped value at all
