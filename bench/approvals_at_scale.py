"""Approvals at scale: the events service's idle cost with history, expiry lateness and the
press → `wait_for_approval` round trip with many approvals open.

Starts the whole suite with `cctelegram up` (embedded NATS, sandbox, five services), then:

1. idle CPU and RSS of the events process with 0, 10,000 and 100,000 approvals stored;
2. expiry lateness (the on_timeout rule applied → its expiry) of probes falling due one by
   one while 10,000 other approvals are open;
3. press in the sandbox → `wait_for_approval` returns, with 0 and with 10,000 open.

Stored approvals are written by a bulk loader straight into the store, exactly as the events
service leaves them: decided records (decided at times spread over the history window) with the
per-key TTL the service gives them; open records with their schedule in the due index (what
`ApprovalService.submit` writes, minus the Telegram cards: 10,000 cards to one chat would keep
the notifier busy at Telegram's 1 msg/s per chat for hours and measure that instead).
Event statuses and delivery records are not loaded: nothing reads them unless asked.

    uv run python bench/approvals_at_scale.py [--idle-s 30] [--stored 0,10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.due_index import schedule_expiry
from cctelegram_testing.bench import approval_round_trips, percentile
from cctelegram_testing.suite import RunningSuite, start_suite

HISTORY_S = 30 * 24 * 3600.0
CHUNK = 500
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------------
def descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def find_process(suite: RunningSuite, needle: str) -> int:
    for pid in descendants(suite.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            return pid
    raise RuntimeError(f"no {needle} process under the suite")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def idle(pids: dict[str, int], window_s: float) -> dict[str, tuple[float, float]]:
    """CPU % (of one core) over the window and RSS at its end, per process."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(window_s)
    return {
        name: (100 * (cpu_seconds(pid) - before[name]) / window_s, rss_mb(pid))
        for name, pid in pids.items()
    }


# --- bulk loader -------------------------------------------------------------------------------
def record(now: Any, *, decided: bool, expires_in_s: float) -> ApprovalRecord:
    approval_id = uuid.uuid4().hex
    created = now - timedelta(seconds=random.uniform(60, HISTORY_S - 3600)) if decided else now
    fields: dict[str, Any] = {
        "approval_id": approval_id,
        "client_id": "bench-agent",
        "title": f"Deploy build {approval_id[:8]} to production?",
        "description": "The release pipeline finished; all checks are green. " * 2,
        "options": ("Approve", "Deny"),
        "approvers": (DEMO_USER_ID,),
        "card_text": "<b>🔐 Approval needed</b>\n" + "Deploy the build to production? " * 8,
        "created_at": created,
        "expires_at": created + timedelta(seconds=expires_in_s),
    }
    if decided:
        fields |= {
            "status": random.choice((ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)),
            "chosen_option": "Approve",
            "chosen_index": 0,
            "decided_by_user_id": DEMO_USER_ID,
            "decided_at": created + timedelta(seconds=random.uniform(5, 600)),
        }
    return ApprovalRecord.model_validate(fields)


async def in_chunks(calls: Iterable[Awaitable[object]]) -> None:
    pending: list[Awaitable[object]] = []
    for call in calls:
        pending.append(call)
        if len(pending) >= CHUNK:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)


async def store_decided(js: JetStreamContext, count: int) -> None:
    """Decided approvals with the per-key TTL the events service writes (left of 30 days)."""
    now = utc_now()

    def write(item: ApprovalRecord) -> Awaitable[object]:
        assert item.decided_at is not None
        left_s = HISTORY_S - (now - item.decided_at).total_seconds()
        return js.publish(
            f"$KV.{subjects.KV_APPROVALS}.{item.approval_id}",
            item.model_dump_json().encode(),
            msg_ttl=max(1.0, left_s),
        )

    await in_chunks(write(record(now, decided=True, expires_in_s=1800)) for _ in range(count))


async def store_open(js: JetStreamContext, expiries_s: list[float]) -> list[ApprovalRecord]:
    """Open approvals as ``ApprovalService.submit`` leaves them: the record, then the schedule."""
    now = utc_now()
    records = [record(now, decided=False, expires_in_s=s) for s in expiries_s]

    async def write(item: ApprovalRecord) -> None:
        await js.publish(
            f"$KV.{subjects.KV_APPROVALS}.{item.approval_id}", item.model_dump_json().encode()
        )
        await schedule_expiry(js, item.approval_id, item.expires_at)

    await in_chunks(write(item) for item in records)
    return records


async def expiry_lateness(js: JetStreamContext, probes: int, spread_s: float) -> list[float]:
    """Probes due one after another over ``spread_s``; lateness = decided_at - expires_at."""
    records = await store_open(js, [5 + spread_s * i / probes for i in range(probes)])
    kv = await js.key_value(subjects.KV_APPROVALS)
    deadline = time.monotonic() + spread_s + 60
    lateness: dict[str, float] = {}
    while len(lateness) < probes and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        for item in records:
            if item.approval_id in lateness:
                continue
            entry = await kv.get(item.approval_id)
            stored = ApprovalRecord.model_validate_json(entry.value or b"{}")
            if not stored.is_open and stored.decided_at is not None:
                lateness[item.approval_id] = (stored.decided_at - item.expires_at).total_seconds()
    if len(lateness) < probes:
        raise RuntimeError(f"only {len(lateness)} of {probes} probes expired")
    return list(lateness.values())


# --- press → wait_for_approval -------------------------------------------------------------------
async def round_trips(suite: RunningSuite, rounds: int) -> list[float]:
    return await approval_round_trips(suite, rounds, "Scale bench")


# --- the run -------------------------------------------------------------------------------------
async def run(stored_steps: list[int], idle_s: float, open_count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        suite = start_suite(Path(data_dir))
        try:
            pids = {
                "events": find_process(suite, "cctelegram_events"),
                "nats-server": find_process(suite, "nats-server"),
            }
            nc = await nats.connect(suite.nats_url)
            js = nc.jetstream()
            await asyncio.sleep(10)  # let start-up settle
            print(f"approvals at scale (idle windows of {idle_s:.0f} s)")
            print("  stored      events CPU  events RSS   nats-server CPU  load time")
            loaded = 0
            idle_rows: list[tuple[int, float, float]] = []
            for target in stored_steps:
                started = time.monotonic()
                await store_decided(js, target - loaded)
                load_s = time.monotonic() - started
                loaded = target
                await asyncio.sleep(5)
                figures = await idle(pids, idle_s)
                cpu, rss = figures["events"]
                idle_rows.append((target, cpu, rss))
                nats_cpu = figures["nats-server"][0]
                print(
                    f"  {target:>7,}   {cpu:8.2f} %  {rss:7.1f} MB   {nats_cpu:10.2f} %"
                    f"     {load_s:5.1f} s",
                    flush=True,
                )
            base_cpu, base_rss = idle_rows[0][1], idle_rows[0][2]
            top = idle_rows[-1]
            print(
                f"  → at {top[0]:,}: CPU {top[1] - base_cpu:+.2f} points (target ≤ +1), "
                f"RSS {top[2] - base_rss:+.1f} MB (target ≤ +20)"
            )

            before = await round_trips(suite, rounds)
            await store_open(js, [3600 + i for i in range(open_count)])
            await asyncio.sleep(5)
            figures = await idle(pids, idle_s)
            print(
                f"  with {open_count:,} open as well: events CPU {figures['events'][0]:.2f} %, "
                f"RSS {figures['events'][1]:.1f} MB"
            )
            lateness = await expiry_lateness(js, probes=300, spread_s=30)
            print(f"expiry lateness, 300 probes due over 30 s with {open_count:,} open")
            print(
                f"  p50 {percentile(lateness, 0.5) * 1000:6.0f} ms   p99 "
                f"{percentile(lateness, 0.99) * 1000:6.0f} ms   max {max(lateness) * 1000:6.0f} ms"
                "   (target p99 ≤ 1,500 ms)"
            )
            after = await round_trips(suite, rounds)
            print(f"press → wait_for_approval returns ({rounds} rounds each)")
            stored = f"{loaded:,} stored"
            for label, values in (
                (f"{stored}, 0 open", before),
                (f"{stored}, {open_count:,} open", after),
            ):
                print(
                    f"  {label:>28}: p50 {percentile(values, 0.5):6.1f} ms   "
                    f"p99 {percentile(values, 0.99):6.1f} ms   max {max(values):6.1f} ms"
                )
            await nc.close()
        finally:
            suite.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stored", default="0,10000,100000", help="decided approvals stored")
    parser.add_argument("--idle-s", type=float, default=30.0, help="idle window per step")
    parser.add_argument("--open", type=int, default=10_000, help="open approvals")
    parser.add_argument("--rounds", type=int, default=40, help="press round trips each")
    args = parser.parse_args()
    steps = [int(step) for step in args.stored.split(",")]
    asyncio.run(run(steps, args.idle_s, args.open, args.rounds))


if __name__ == "__main__":
    main()
