"""OpenTelemetry tracing: one provider per process, OTLP export when ``OTEL_*`` says so,
no secret in any exported span, and instrumentation helpers for HTTP in and out."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Span

from cctelegram_common.redaction import redact

_provider: TracerProvider | None = None


def _clean(attributes: Any) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if isinstance(value, str):
            cleaned[key] = redact(value)
        elif isinstance(value, tuple | list):
            cleaned[key] = tuple(redact(item) if isinstance(item, str) else item for item in value)
        else:
            cleaned[key] = value
    return cleaned


class RedactingSpanExporter(SpanExporter):
    """Exports copies of spans whose names, attributes and events went through redaction.

    Instrumentations record full URLs, and a Bot API URL carries the bot token; this is the
    one place every span passes before it leaves the process.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([self._redacted(span) for span in spans])

    @staticmethod
    def _redacted(span: ReadableSpan) -> ReadableSpan:
        return ReadableSpan(
            name=redact(span.name),
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=_clean(span.attributes),
            events=[
                Event(event.name, _clean(event.attributes), event.timestamp)
                for event in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def setup_tracing(
    service: str, instance_id: str, version: str, enabled: bool = True
) -> TracerProvider:
    """Install the process's tracer provider (idempotent).

    Spans are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
    traces-specific variable) is set, sampled as ``OTEL_TRACES_SAMPLER`` says. Without an
    exporter this process starts no recorded trace (parent-based, roots off): spans still
    get ids, so trace context propagates and log lines carry trace ids, but recording spans
    that go nowhere cost a fifth of the gateway's CPU per call. A trace an exporting
    upstream sampled stays sampled through this hop, so a mixed deployment keeps it whole.
    """
    global _provider
    if _provider is not None:
        return _provider
    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", f"cctelegram-{service}"),
            "service.instance.id": instance_id,
            "service.version": version,
        }
    )
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    exporting = bool(
        enabled and endpoint and os.environ.get("OTEL_TRACES_EXPORTER", "otlp") != "none"
    )
    # None: the SDK reads OTEL_TRACES_SAMPLER / _ARG (default: parent-based, always on).
    provider = TracerProvider(
        resource=resource, sampler=None if exporting else ParentBased(ALWAYS_OFF)
    )
    if exporting:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


def _name_bot_api_span(span: Span, request: Any) -> None:
    """``POST`` becomes ``telegram sendMessage``: readable, and without the token."""
    path = str(getattr(getattr(request, "url", None), "path", "") or "")
    if "/bot" in path and span.is_recording():
        span.update_name(f"telegram {path.rsplit('/', 1)[-1]}")


async def _name_bot_api_span_async(span: Span, request: Any) -> None:
    _name_bot_api_span(span, request)


def instrument_httpx(client: httpx.AsyncClient | httpx.Client) -> None:
    """Trace every call this client makes (child spans of the current message span)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    # The instrumentation calls a coroutine hook for an async client and a plain one otherwise.
    hook: Any = (
        _name_bot_api_span_async if isinstance(client, httpx.AsyncClient) else _name_bot_api_span
    )
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=_provider, request_hook=hook)


def asgi_tracing(app: Any, excluded: str = "/health,/health/ready,/metrics") -> Any:
    """Wrap an ASGI app so each HTTP request is a server span (health and metrics left out)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    os.environ.setdefault("OTEL_PYTHON_ASGI_EXCLUDED_URLS", excluded)
    # One server span per request; the per-chunk "http send/receive" spans cost more CPU than
    # they tell an operator.
    return OpenTelemetryMiddleware(
        app, tracer_provider=_provider, exclude_spans=["receive", "send"]
    )


_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")


@contextlib.contextmanager
def continued_trace(scope: Any) -> Iterator[None]:
    """While an ASGI request runs: the caller's W3C trace context (its ``traceparent``
    header) as the current context, without a span of its own. For paths where the app
    opens the server span itself."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name in _TRACE_HEADERS
    }
    token = otel_context.attach(propagate.extract(carrier)) if carrier else None
    try:
        yield
    finally:
        if token is not None:
            otel_context.detach(token)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store beside long-lived state."""

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def links_to(traceparent: str | None) -> list[trace.Link]:
    """A span link to a stored ``traceparent`` (none when absent or invalid).

    An approval is decided long after the request that created it, in the trace of a
    Telegram update; the link is what joins the two in a tracing UI.
    """
    if not traceparent:
        return []

    context = propagate.extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return [trace.Link(span_context)] if span_context.is_valid else []
