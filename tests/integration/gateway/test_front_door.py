"""The request path over HTTP, in-process against a real auth service and NATS: request ids,
authentication before the body, Host/Origin, body limit, errors, limits, integrations."""

from __future__ import annotations

import asyncio
import json
import uuid

import nats
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind
from starlette.testclient import TestClient

from cctelegram_common import subjects

MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_every_answer_has_a_request_id_and_errors_echo_it(client: TestClient, keys) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    assert health.headers["x-request-id"]
    missing = client.post("/v1/tools/send_telegram_message", json={"message": "x"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert error_of(missing)["code"] == "unauthorized"
    mine = client.get("/nope", headers={**bearer(keys.admin), "X-Request-Id": "my-req-42"})
    assert mine.headers["x-request-id"] == "my-req-42"
    assert error_of(mine)["request_id"] == "my-req-42"
    insane = client.get("/health", headers={"X-Request-Id": "x" * 300})
    assert insane.headers["x-request-id"] != "x" * 300


def test_authentication_happens_before_the_body_is_read(client: TestClient, keys) -> None:
    broken = {"content-type": "application/json"}
    for headers in ({}, bearer(keys.revoked), bearer("garbage")):
        response = client.post(
            "/v1/tools/send_telegram_message", content=b"{not json", headers={**broken, **headers}
        )
        assert response.status_code == 401, response.text
    oversized = client.post(
        "/v1/tools/send_telegram_message", content=b"x" * (2 * 1024 * 1024), headers=broken
    )
    assert oversized.status_code == 401


def test_bodies_over_the_limit_get_413_declared_or_streamed(client: TestClient, keys) -> None:
    big = b'{"message": "' + b"x" * (1024 * 1024) + b'"}'
    declared = client.post(
        "/v1/tools/send_telegram_message",
        content=big,
        headers={**bearer(keys.admin), "content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert error_of(declared)["code"] == "too_large"

    def chunks():
        for _ in range(20):
            yield b"x" * 100_000

    streamed = client.post("/mcp", content=chunks(), headers={**bearer(keys.admin), **MCP_HEADERS})
    assert streamed.status_code == 413


def test_foreign_origin_gets_403_and_foreign_host_421(client: TestClient, keys) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    evil = client.post(
        "/mcp",
        json=body,
        headers={**bearer(keys.admin), **MCP_HEADERS, "Origin": "https://evil.example"},
    )
    assert evil.status_code == 403
    assert error_of(evil)["code"] == "forbidden"
    local = client.post(
        "/mcp",
        json=body,
        headers={**bearer(keys.admin), **MCP_HEADERS, "Origin": "http://localhost:3000"},
    )
    assert local.status_code == 200
    rebound = client.post(
        "/mcp", json=body, headers={**bearer(keys.admin), **MCP_HEADERS, "Host": "evil.example"}
    )
    assert rebound.status_code == 421
    # Probes are addressed by pod IP: no Host policy there.
    assert client.get("/health/ready", headers={"Host": "10.1.2.3:8080"}).status_code in (200, 503)


def test_rest_validation_errors_name_the_field(client: TestClient, keys) -> None:
    response = client.post(
        "/v1/tools/send_telegram_event",
        json={"type": "task_completion", "title": "", "description": "d"},
        headers=bearer(keys.admin),
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "title"
    assert "at least 1 character" in error["message"]
    broken = client.post(
        "/v1/tools/send_telegram_message",
        content=b"{nope",
        headers={**bearer(keys.admin), "content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert error_of(broken)["code"] == "invalid"


def test_reader_is_refused_with_403_naming_the_permission(client: TestClient, keys) -> None:
    response = client.post(
        "/v1/tools/send_telegram_message", json={"message": "hi"}, headers=bearer(keys.reader)
    )
    assert response.status_code == 403
    assert "events:send" in error_of(response)["message"]


def test_rate_limit_gives_429_with_retry_after_and_mcp_a_retry_hint(
    client: TestClient, keys
) -> None:
    statuses = [
        client.post(
            "/v1/tools/send_telegram_message",
            json={"message": "hi"},
            headers=bearer(keys.limited_agent),
        )
        for _ in range(4)
    ]
    assert [response.status_code for response in statuses[:3]] == [200, 200, 200]
    limited = statuses[3]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert error_of(limited)["retry_after_s"] > 0
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "send_telegram_message", "arguments": {"message": "hi"}},
    }
    mcp = client.post("/mcp", json=call, headers={**bearer(keys.limited_agent), **MCP_HEADERS})
    result = mcp.json()["result"]
    assert result["isError"] is True
    assert "retry in" in result["content"][0]["text"]


def test_mcp_lists_only_permitted_tools_and_names_a_missing_permission(
    client: TestClient, keys
) -> None:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}

    def names(key: str) -> set[str]:
        response = client.post("/mcp", json=listing, headers={**bearer(key), **MCP_HEADERS})
        return {tool["name"] for tool in response.json()["result"]["tools"]}

    admin, reader = names(keys.admin), names(keys.reader)
    assert "send_telegram_message" in admin
    assert "send_telegram_message" not in reader
    assert reader < admin
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "send_telegram_message", "arguments": {"message": "hi"}},
    }
    response = client.post("/mcp", json=call, headers={**bearer(keys.reader), **MCP_HEADERS})
    result = response.json()["result"]
    assert result["isError"] is True
    assert "events:send" in result["content"][0]["text"]


def test_invalid_mcp_arguments_name_the_field_and_the_rule(client: TestClient, keys) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "send_telegram_message", "arguments": {"message": 42}},
    }
    response = client.post("/mcp", json=call, headers={**bearer(keys.admin), **MCP_HEADERS})
    result = response.json()["result"]
    assert result["isError"] is True
    assert result["content"][0]["text"].startswith("message: Input should be a valid string")


def test_mcp_rejects_get(client: TestClient, keys) -> None:
    response = client.get("/mcp", headers={**bearer(keys.admin), "accept": "text/event-stream"})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


async def _last(nats_url: str, stream: str, subject: str) -> dict:
    nc = await nats.connect(nats_url)
    try:
        message = await nc.jetstream().get_last_msg(stream, subject)
        return {"data": json.loads(message.data), "headers": message.headers or {}}
    finally:
        await nc.close()


def test_telegram_webhook_checks_the_secret_and_stores_once(client: TestClient, auth_stack) -> None:
    update_id = uuid.uuid4().int % 10**9
    update = {"update_id": update_id, "message": {"message_id": 1, "text": "hi"}}
    assert client.post("/telegram/webhook", json=update).status_code == 401
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "nope"}
    assert client.post("/telegram/webhook", json=update, headers=wrong).status_code == 403
    right = {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-for-tests"}
    for _ in range(2):
        assert client.post("/telegram/webhook", json=update, headers=right).status_code == 200
    stored = asyncio.run(
        _last(auth_stack.nats_url, subjects.STREAM_UPDATES, subjects.TELEGRAM_UPDATES)
    )
    assert stored["data"]["update_id"] == update_id
    assert stored["data"]["source"] == "webhook"
    assert stored["headers"]["Nats-Msg-Id"] == f"tg-update-{update_id}"


def test_alertmanager_alerts_become_submit_events(client: TestClient, keys, auth_stack) -> None:
    name = f"DiskFull-{uuid.uuid4().hex[:6]}"
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "cctelegram",
        "groupLabels": {},
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "severity": "critical"},
                "annotations": {"summary": "disk almost full"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }
    response = client.post(
        "/v1/integrations/alertmanager", json=payload, headers=bearer(keys.operator)
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    stored = asyncio.run(_last(auth_stack.nats_url, subjects.STREAM_EVENTS, subjects.EVENT_SUBMIT))
    assert stored["data"]["title"] == f"Firing: {name}"
    assert stored["data"]["type"] == "alert_notification"
    assert stored["data"]["severity"] == "critical"
    assert stored["headers"]["Nats-Msg-Id"] == response.json()["event_ids"][0]
    refused = client.post(
        "/v1/integrations/alertmanager", json=payload, headers=bearer(keys.reader)
    )
    assert refused.status_code == 403


def test_denials_are_audited_without_the_key(client: TestClient, keys, auth_stack) -> None:
    request_id = f"audit-{uuid.uuid4().hex[:8]}"
    client.post(
        "/v1/tools/send_telegram_message",
        json={"message": "hi"},
        headers={**bearer(keys.reader), "X-Request-Id": request_id},
    )
    client.gateway.auditor  # noqa: B018 - the records are published in the background
    asyncio.run(asyncio.sleep(0.3))
    record = asyncio.run(
        _last(
            auth_stack.nats_url,
            subjects.STREAM_AUDIT,
            subjects.audit_subject("gateway", "permission.denied"),
        )
    )
    assert record["data"]["request_id"] == request_id
    assert record["data"]["reason"] == "needs events:send"
    assert keys.reader.split("_")[2] not in json.dumps(record)


def test_header_values_lose_surrounding_whitespace_whatever_the_parser() -> None:
    """httptools keeps it, h11 drops it; RFC 9110 says it is not part of the value."""
    from cctelegram_gateway.middleware import without_surrounding_whitespace

    clean = [(b"host", b"localhost"), (b"mcp-name", b"send_telegram_event")]
    assert without_surrounding_whitespace(clean) is clean  # nothing to do, no copy
    padded = [(b"host", b"localhost"), (b"mcp-name", b" \tsend_telegram_event \t")]
    assert without_surrounding_whitespace(padded) == clean
    assert without_surrounding_whitespace([(b"x-empty", b"")]) == [(b"x-empty", b"")]


class _Collector(SpanProcessor):
    """Keeps the spans that end while it is switched on (the process provider is global)."""

    def __init__(self) -> None:
        self.active = False
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            self.spans.append(span)


def test_an_mcp_call_continues_the_callers_trace_in_one_server_span(
    client: TestClient, keys
) -> None:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    collector = _Collector()
    provider.add_span_processor(collector)
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "list_event_types", "arguments": {}},
    }
    collector.active = True
    try:
        response = client.post(
            "/mcp",
            json=call,
            headers={
                **bearer(keys.admin),
                **MCP_HEADERS,
                "MCP-Protocol-Version": "2025-11-25",
                "traceparent": traceparent,
            },
        )
        rest_trace_id = uuid.uuid4().hex
        rest = client.post(
            "/v1/tools/list_event_types",
            json={},
            headers={
                **bearer(keys.admin),
                "traceparent": f"00-{rest_trace_id}-{uuid.uuid4().hex[:16]}-01",
            },
        )
    finally:
        collector.active = False
    assert response.status_code == 200, response.text
    assert rest.status_code == 200, rest.text
    continued = [s for s in collector.spans if f"{s.context.trace_id:032x}" == trace_id]
    servers = [span for span in continued if span.kind is SpanKind.SERVER]
    assert [span.name for span in servers] == ["tools/call list_event_types"], continued
    assert servers[0].attributes["cctelegram.request_id"] == response.headers["x-request-id"]
    # Every other request still gets the HTTP instrumentation's server span.
    http_spans = [s for s in collector.spans if f"{s.context.trace_id:032x}" == rest_trace_id]
    assert any(span.kind is SpanKind.SERVER for span in http_spans), http_spans


def test_mcp_requests_are_counted_under_their_route(client: TestClient, keys) -> None:
    """Alerts tell /mcp (long-polling wait_for_approval) apart by this label."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    listed = client.post("/mcp", json=body, headers={**bearer(keys.admin), **MCP_HEADERS})
    assert listed.status_code == 200
    metrics = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/mcp",status="2xx"}' in metrics, [
        line for line in metrics.splitlines() if line.startswith("http_requests_total")
    ]
