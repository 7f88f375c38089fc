"""Gateway benchmark: accepted ``send_telegram_event`` calls/s over MCP Streamable HTTP with
authentication and durable storage, latency at half that rate, and the same for a bare SDK
server with a no-op tool (the floor of the stack), measured with the same load generator.

Run: ``uv run python bench/gateway.py [--seconds 8] [--concurrency 32] [--rounds 7]``.

The chain: nats-server (file store) → auth → gateway → JetStream (CCTG_EVENTS), plus the
events service consuming SubmitEvent when it starts. Every figure is printed with what it
means; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cctelegram_common.apikeys import generate_key
from cctelegram_common.subjects import CONSUMER_EVENTS_SUBMIT, STREAM_EVENTS
from cctelegram_testing.nats import NatsServer, free_port
from cctelegram_testing.otlp import OtlpReceiver
from cctelegram_testing.processes import ServiceProcess, ServiceProcessError

CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "send_telegram_event",
        "arguments": {
            "type": "build_completed",
            "title": "Build 1234 passed",
            "description": "All 812 tests passed in 3m12s on main.",
            "data": {"branch_name": "main", "duration_ms": 192000},
        },
    },
}
NOOP_CALL = {**CALL, "params": {"name": "noop", "arguments": {}}}


# --- a small HTTP/1.1 keep-alive load generator (cheap on CPU, so it is not the bottleneck) --
class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, request: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def http_request(host: str, port: int, body: dict[str, object], key: str | None) -> bytes:
    payload = json.dumps(body).encode()
    headers = [
        "POST /mcp HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json, text/event-stream",
        "MCP-Protocol-Version: 2025-11-25",
        f"Content-Length: {len(payload)}",
    ]
    if key:
        headers.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + payload


def accepted(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    result = json.loads(body).get("result", {})
    return not result.get("isError", True)


@dataclass
class Run:
    accepted: int
    refused: int
    seconds: float
    latencies_ms: list[float]
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(
    host: str, port: int, request: bytes, concurrency: int, seconds: float
) -> Run:
    """As fast as it goes: ``concurrency`` connections, each sending the next call at once."""
    connections = [Connection(host, port) for _ in range(concurrency)]
    await asyncio.gather(*(connection.open() for connection in connections))
    counts = {"ok": 0, "refused": 0}
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, body = await connection.post(request)
            latencies.append((time.perf_counter() - started) * 1000)
            counts["ok" if accepted(status, body) else "refused"] += 1

    cpu_before, started = cpu_now(), time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return Run(counts["ok"], counts["refused"], elapsed, latencies, cpu_now() - cpu_before)


async def open_loop(
    host: str, port: int, request: bytes, rate: float, seconds: float, connections_n: int = 64
) -> Run:
    """Calls scheduled at a fixed rate (independent of answers); latency from schedule time."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections_n):
        connection = Connection(host, port)
        await connection.open()
        pool.put_nowait(connection)
    counts = {"ok": 0, "refused": 0}
    latencies: list[float] = []
    total = int(rate * seconds)
    interval = 1.0 / rate
    tasks: list[asyncio.Task[None]] = []

    async def one(scheduled: float) -> None:
        connection = await pool.get()
        try:
            status, body = await connection.post(request)
        finally:
            pool.put_nowait(connection)
        latencies.append((time.perf_counter() - scheduled) * 1000)
        counts["ok" if accepted(status, body) else "refused"] += 1

    cpu_before, started = cpu_now(), time.perf_counter()
    for index in range(total):
        scheduled = started + index * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        await pool.get_nowait().close()
    return Run(counts["ok"], counts["refused"], elapsed, latencies, cpu_now() - cpu_before)


# --- the floor: a bare SDK server with a no-op tool ---------------------------------------------
def serve_floor(port: int) -> None:
    import mcp_types as types
    import uvicorn
    from mcp.server import Server

    async def list_tools(_ctx: object, _params: object) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[types.Tool(name="noop", input_schema={"type": "object", "properties": {}})]
        )

    async def call_tool(_ctx: object, _params: object) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])

    server = Server("floor", on_list_tools=list_tools, on_call_tool=call_tool)  # type: ignore[arg-type]
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    import logging

    logging.getLogger("mcp").setLevel(logging.WARNING)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_floor(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-floor", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=open(directory / "floor.log", "wb"),  # noqa: SIM115
    )
    import socket

    for _ in range(300):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.1)
    raise RuntimeError("floor server did not start")


# --- cached authentication cost, in-process ----------------------------------------------------
async def cached_auth_cost_us(iterations: int = 50_000) -> tuple[float, float]:
    """(verifier cache hit, whole front door with a cached key) in µs per request."""
    from cctelegram_common.contracts.auth import (
        ROLE_PERMISSIONS,
        Principal,
        Role,
        VerifyResponse,
    )
    from cctelegram_gateway.auditing import Auditor
    from cctelegram_gateway.middleware import GatewayMiddleware
    from cctelegram_gateway.verifier import Verifier

    key = generate_key()
    principal = Principal(
        client_id="bench",
        key_id=key.key_id,
        role=Role.AGENT,
        permissions=ROLE_PERMISSIONS[Role.AGENT],
    )

    async def ask(_presented: str, _request_id: str | None) -> VerifyResponse:
        return VerifyResponse(valid=True, principal=principal)

    async def no_audit(_record: object) -> None:
        return None

    verifier = Verifier(ask)
    await verifier.verify(key.full)
    started = time.perf_counter()
    for _ in range(iterations):
        await verifier.verify(key.full)
    hit_us = (time.perf_counter() - started) / iterations * 1e6

    async def inner(_scope: object, receive: object, send: object) -> None:
        await receive()  # type: ignore[operator]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    door = GatewayMiddleware(
        inner,  # type: ignore[arg-type]
        verifier=verifier,
        auditor=Auditor(no_audit),  # type: ignore[arg-type]
        allowed_hosts=["127.0.0.1:*"],
        allowed_origins=[],
        max_body_bytes=1 << 20,
    )
    body = json.dumps(CALL).encode()
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"authorization", f"Bearer {key.full}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(_message: object) -> None:
        return None

    started = time.perf_counter()
    count = iterations // 5
    for _ in range(count):
        scope = {"type": "http", "path": "/mcp", "method": "POST", "headers": headers}
        await door(scope, receive, send)
    door_us = (time.perf_counter() - started) / count * 1e6
    return hit_us, door_us


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the load generator while it measures (as ``timeit`` does):
    a full collection here stalls every call in flight and would be charged to the server.
    A phase is a few seconds long, so memory stays bounded."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def measure(
    label: str,
    port: int,
    request: bytes,
    seconds: float,
    concurrency: int,
    server_pid: int,
    nats_url: str | None = None,
) -> tuple[Run, Run]:
    await closed_loop("127.0.0.1", port, request, 4, 1.0)  # warm-up (caches, JIT-ish paths)
    caught_up_s = await settled(nats_url)
    with collector_paused():
        server_cpu = process_cpu_s(server_pid)
        peak = await closed_loop("127.0.0.1", port, request, concurrency, seconds)
        server_cpu = process_cpu_s(server_pid) - server_cpu
    caught_up_s += await settled(nats_url)
    with collector_paused():
        half = await open_loop("127.0.0.1", port, request, max(1.0, peak.rate / 2), seconds)
    print(
        f"{label:<34} {peak.rate:>8.0f} calls/s  (refused {peak.refused}, server CPU "
        f"{server_cpu / peak.seconds * 100:.0f}% of a core)\n"
        f"{'':<34} at {peak.rate / 2:.0f}/s: p50 {half.percentile(0.5):.2f} ms, "
        f"p99 {half.percentile(0.99):.2f} ms ({half.accepted} accepted, {half.refused} refused)\n"
        f"{'':<34} load generator CPU: {peak.cpu_s / peak.seconds * 100:.0f}% of a core at "
        f"peak, {half.cpu_s / half.seconds * 100:.0f}% at half rate; waited {caught_up_s:.1f} s "
        f"for the events service to finish earlier phases' events",
        flush=True,
    )
    return peak, half


async def settled(nats_url: str | None, limit_s: float = 120.0) -> float:
    """Wait until the events service has handled every stored event (its durable consumer
    has nothing pending or unacked); seconds waited. Each phase then starts from a suite
    that is running but idle, and no phase pays for the previous one's backlog."""
    if nats_url is None:
        return 0.0
    import nats

    started = time.perf_counter()
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        while time.perf_counter() - started < limit_s:
            info = await js.consumer_info(STREAM_EVENTS, CONSUMER_EVENTS_SUBMIT)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    return time.perf_counter() - started


async def interleaved_ratio(
    targets: list[tuple[int, bytes]],
    rounds: int,
    seconds: float,
    concurrency: int,
    nats_url: str | None,
) -> list[float]:
    """Peak throughput of the gateway and the floor, alternating, ``rounds`` times: each
    round's ratio compares two runs seconds apart, so a neighbour's burst on this shared
    machine skews one round, not the figure (the median)."""
    ratios: list[float] = []
    for _ in range(rounds):
        rates: list[float] = []
        for port, request in targets:
            await settled(nats_url)
            with collector_paused():
                peak = await closed_loop("127.0.0.1", port, request, concurrency, seconds)
            rates.append(peak.rate)
        ratios.append(rates[0] / rates[1])
        print(
            f"{'round':<34} gateway {rates[0]:.0f}/s, floor {rates[1]:.0f}/s: "
            f"ratio {ratios[-1]:.2f}",
            flush=True,
        )
    return ratios


async def telemetry_overhead(
    common: dict[str, str], directory: Path, admin_key: str, seconds: float, concurrency: int
) -> None:
    """Throughput of the same gateway with tracing off (SDK disabled) and with tracing on and
    every span exported over OTLP/HTTP to a real receiver; same load generator, same run."""
    rates: dict[str, float] = {}
    with OtlpReceiver() as receiver:
        exporting = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        for label, extra in (
            ("tracing off", {"OTEL_SDK_DISABLED": "true"}),
            ("tracing on, OTLP export", exporting),
            (
                "tracing on, 10% sampled, export",
                {
                    **exporting,
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.1",
                },
            ),
        ):
            gateway = ServiceProcess(
                "cctelegram_gateway",
                "GATEWAY_",
                {**common, "GATEWAY_LOG__LEVEL": "WARNING", **extra},
                directory / f"gateway-{len(rates)}.log",
            ).start()
            try:
                request = http_request("127.0.0.1", gateway.port, CALL, admin_key)
                await closed_loop("127.0.0.1", gateway.port, request, 4, 1.0)
                with collector_paused():
                    peak = await closed_loop(
                        "127.0.0.1", gateway.port, request, concurrency, seconds
                    )
                rates[label] = peak.rate
                print(f"{'gateway, ' + label:<34} {peak.rate:>8.0f} calls/s", flush=True)
            finally:
                gateway.stop()
        exported = len(receiver.snapshot())
    every = 1 - rates["tracing on, OTLP export"] / rates["tracing off"]
    sampled = 1 - rates["tracing on, 10% sampled, export"] / rates["tracing off"]
    print(
        f"telemetry cost: {every * 100:.1f}% of throughput exporting every trace, "
        f"{sampled * 100:.1f}% sampling 10% (target ≤ 10%); "
        f"{exported} spans received by the OTLP receiver",
        flush=True,
    )


async def bench(seconds: float, concurrency: int, rounds: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="cctg-bench-"))
    admin_key = generate_key().full
    (directory / "key").write_text(admin_key)
    (directory / "callback-secret").write_text(secrets.token_urlsafe(48))
    with NatsServer(directory / "nats") as nats:
        common = {"NATS_URL": nats.url}
        auth = ServiceProcess(
            "cctelegram_auth",
            "AUTH_",
            {
                **common,
                "AUTH_SECRET": secrets.token_urlsafe(48),
                "AUTH_BOOTSTRAP_KEY_FILE": str(directory / "key"),
            },
            directory / "auth.log",
        ).start()
        events: ServiceProcess | None = ServiceProcess(
            "cctelegram_events",
            "EVENTS_",
            {
                **common,
                "EVENTS_CALLBACK_SECRET_FILE": str(directory / "callback-secret"),
                "TELEGRAM_ALLOWED_USERS": "1001",
            },
            directory / "events.log",
        )
        try:
            events.start()  # type: ignore[union-attr]
        except ServiceProcessError as error:
            print(f"(events service not running: {str(error)[:120]}; JetStream alone stores)")
            events = None
        gateway = ServiceProcess(
            "cctelegram_gateway",
            "GATEWAY_",
            {**common, "GATEWAY_LOG__LEVEL": "WARNING"},
            directory / "gateway.log",
        ).start()
        floor, floor_port = start_floor(directory)
        try:
            print(
                f"chain: nats-server (file store) → auth → gateway → JetStream"
                f"{' → events service' if events else ''}; {os.cpu_count()} CPUs, load "
                f"{os.getloadavg()[0]:.1f}; {seconds:.0f} s per phase, {concurrency} connections"
            )
            gateway_request = http_request("127.0.0.1", gateway.port, CALL, admin_key)
            assert gateway.process is not None
            full_peak, full_half = await measure(
                "gateway send_telegram_event",
                gateway.port,
                gateway_request,
                seconds,
                concurrency,
                gateway.process.pid,
                nats.url if events else None,
            )
            floor_request = http_request("127.0.0.1", floor_port, NOOP_CALL, None)
            floor_peak, _ = await measure(
                "bare SDK server, no-op tool",
                floor_port,
                floor_request,
                seconds,
                concurrency,
                floor.pid,
                nats.url if events else None,
            )
            ratios = await interleaved_ratio(
                [(gateway.port, gateway_request), (floor_port, floor_request)],
                rounds,
                seconds / 2,
                concurrency,
                nats.url if events else None,
            )
            await telemetry_overhead(common, directory, admin_key, seconds, concurrency)
            hit_us, door_us = await cached_auth_cost_us()
            print(
                f"ratio gateway / floor throughput: {full_peak.rate / floor_peak.rate:.2f} "
                f"in the phases above; median of {rounds} interleaved rounds "
                f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}) "
                f"(target ≥ 0.6); gateway p99 at half load {full_half.percentile(0.99):.1f} ms "
                f"(target ≤ 50)\n"
                f"cached authentication: {hit_us:.2f} µs verifier hit, {door_us:.1f} µs for the "
                f"whole front door (request id, Host, bearer, cached verify, body) (target ≤ 200)"
            )
        finally:
            floor.terminate()
            floor.wait(10)
            gateway.stop()
            if events is not None:
                events.stop()
            auth.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved peak rounds")
    parser.add_argument("--serve-floor", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor is not None:
        serve_floor(args.serve_floor)
        return
    asyncio.run(bench(args.seconds, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
