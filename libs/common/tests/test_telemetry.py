"""Exported spans carry no secret, and trace ids reach log lines."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cctelegram_common.logging import add_trace_ids
from cctelegram_common.telemetry import RedactingSpanExporter

TOKEN = "123456789:AAHk3z_Qx-9fJk2LmNoPqRsTuVwXyZ01234"


def test_span_attributes_events_and_names_are_redacted() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(memory)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"POST /bot{TOKEN}/sendMessage") as span:
        span.set_attribute("url.full", f"https://api.telegram.org/bot{TOKEN}/sendMessage")
        span.set_attribute("http.request.method", "POST")
        span.add_event("retry", {"reason": f"timeout calling /bot{TOKEN}/getMe"})
        context = span.get_span_context()
        log_line = add_trace_ids(None, "info", {"event": "x"})
    (exported,) = memory.get_finished_spans()
    assert TOKEN not in exported.name
    assert TOKEN not in str(exported.attributes)
    assert TOKEN not in str(exported.events[0].attributes)
    assert exported.attributes["http.request.method"] == "POST"
    assert log_line["trace_id"] == format(context.trace_id, "032x")
    assert log_line["span_id"] == format(context.span_id, "016x")


def test_otlp_export_reaches_a_real_receiver_without_the_token() -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from cctelegram_testing.otlp import OtlpReceiver

    with OtlpReceiver() as receiver:
        provider = TracerProvider()
        exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
        provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exporter)))
        with provider.get_tracer("test").start_as_current_span("send") as span:
            span.set_attribute("url.full", f"http://x/bot{TOKEN}/sendMessage")
        provider.shutdown()
        (received,) = receiver.snapshot()
    assert received.name == "send"
    assert TOKEN not in str(received.attributes)


async def test_bot_api_calls_become_named_spans_without_the_token() -> None:
    import httpx

    import cctelegram_common.telemetry as telemetry

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(memory)))
    previous, telemetry._provider = telemetry._provider, provider
    try:

        def answer(_request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"ok": True, "result": True})

        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            telemetry.instrument_httpx(client)
            await client.post(f"https://api.telegram.org/bot{TOKEN}/sendMessage", json={})
    finally:
        telemetry._provider = previous
    (span,) = memory.get_finished_spans()
    assert span.name == "telegram sendMessage"
    assert TOKEN not in str(span.attributes)
