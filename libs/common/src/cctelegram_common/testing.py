"""Test-setup helpers shared by the test suites: installing what a test needs, by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def ensure_debian_package(binary: str, package: str, timeout_s: float = 600) -> str | None:
    """The path of ``binary``, installing Debian ``package`` first when it is missing.

    Tests call this instead of requiring a hand-installed tool: CI machines start clean. It
    installs only as root with apt available, and returns None (the caller skips with a
    reason) when installation is impossible.
    """
    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        lists = Path("/var/lib/apt/lists")
        if not any(lists.glob("*_Packages")):
            subprocess.run(  # noqa: S603 - fixed arguments
                [apt_get, "update", "-qq"],
                env=env,
                timeout=timeout_s,
                check=True,
                capture_output=True,
            )
        subprocess.run(  # noqa: S603 - a fixed Debian package name chosen by our own tests
            [apt_get, "install", "-y", "-qq", "--no-install-recommends", package],
            env=env,
            timeout=timeout_s,
            check=True,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which(binary) or (binary if Path(binary).is_file() else None)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    service: str
    attributes: dict[str, str]
    links: tuple[tuple[str, str], ...]  # (trace id, span id)


def _received(span: Any, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        service=service,
        attributes={attribute.key: str(attribute.value).strip() for attribute in span.attributes},
        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
    )


class OtlpReceiver:
    """A real OTLP/HTTP trace receiver on loopback, collecting what the services export."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver._ingest(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _ingest(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    attribute.value.string_value
                    for attribute in resource_spans.resource.attributes
                    if attribute.key == "service.name"
                ),
                "",
            )
            for scope_spans in resource_spans.scope_spans:
                received.extend(_received(span, service) for span in scope_spans.spans)
        with self._lock:
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
