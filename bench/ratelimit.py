"""Rate-limiter micro-benchmark: CPU per call of the gateway's limiter, per replica (the
previous one) and shared across replicas on a real nats-server (KV token bucket with leases).

Run: ``uv run python bench/ratelimit.py [--calls 20000]``.

Figures: the gateway process's CPU per ``take()`` (``time.process_time``) and nats-server's
CPU per call (``/proc/<pid>/stat``), for calls that are allowed (leases of 10 at 600/min, of 50
at a high limit; one replica alone on its keys, or two replicas alternating on the same keys)
and for calls that are refused. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import nats

from cctelegram_common import streams, subjects
from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_gateway.ratelimit import KvBudgetStore, RateLimiter, SharedRateLimiter
from cctelegram_testing.nats import NatsServer


def principal(key_id: str, limit: int) -> Principal:
    return Principal(
        client_id="bench",
        key_id=key_id,
        role=Role.AGENT,
        permissions=ROLE_PERMISSIONS[Role.AGENT],
        rate_limit_per_minute=limit,
    )


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(label: str, calls: int, allowed: int, cpu_s: float, server_s: float) -> None:
    print(
        f"{label:<58} {cpu_s / calls * 1e6:>7.1f} µs gateway CPU/call"
        f"  {server_s / calls * 1e6:>6.1f} µs nats-server CPU/call"
        f"  ({allowed}/{calls} allowed)",
        flush=True,
    )


async def run_shared(
    label: str, limiters: list[SharedRateLimiter], callers: list[Principal], server_pid: int
) -> None:
    calls = 0
    allowed = 0
    started_cpu, started_server = time.process_time(), process_cpu_s(server_pid)
    for caller in callers:
        for index in range(caller.rate_limit_per_minute or 0):
            calls += 1
            allowed += await limiters[index % len(limiters)].take(caller) is None
    report(
        label,
        calls,
        allowed,
        time.process_time() - started_cpu,
        process_cpu_s(server_pid) - started_server,
    )


async def bench(total_calls: int) -> None:
    local = RateLimiter()
    caller = principal("local", 10**9)
    started = time.process_time()
    for _ in range(total_calls):
        local.take(caller)
    print(
        f"{'per replica (before): in-process bucket':<58} "
        f"{(time.process_time() - started) / total_calls * 1e6:>7.1f} µs gateway CPU/call",
        flush=True,
    )

    with tempfile.TemporaryDirectory() as directory, NatsServer(Path(directory)) as server:
        assert server.process is not None
        pid = server.process.pid
        connections = [await nats.connect(server.url) for _ in range(2)]
        await streams.provision(connections[0].jetstream())
        limiters = []
        for connection in connections:
            limiter = SharedRateLimiter(600)
            limiter.store = KvBudgetStore(
                await connection.jetstream().key_value(subjects.KV_RATE_LIMITS)
            )
            limiters.append(limiter)
        keys = max(1, total_calls // 600)
        await run_shared(
            "shared, 1 replica, 600/min (leases of 10)",
            limiters[:1],
            [principal(f"one-{i}", 600) for i in range(keys)],
            pid,
        )
        await run_shared(
            "shared, 2 replicas alternating, 600/min (leases of 10)",
            limiters,
            [principal(f"two-{i}", 600) for i in range(keys)],
            pid,
        )
        await run_shared(
            "shared, 2 replicas alternating, high limit (leases of 50)",
            limiters,
            [principal("high", total_calls)],
            pid,
        )
        limited = principal("tiny", 3)
        for _ in range(3):
            await limiters[0].take(limited)
        calls = total_calls
        started_cpu, started_server = time.process_time(), process_cpu_s(pid)
        refused = sum([await limiters[i % 2].take(limited) is not None for i in range(calls)])
        report(
            "shared, refused calls (over the limit)",
            calls,
            calls - refused,
            time.process_time() - started_cpu,
            process_cpu_s(pid) - started_server,
        )
        for connection in connections:
            await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    arguments = parser.parse_args()
    asyncio.run(bench(arguments.calls))


if __name__ == "__main__":
    main()
