"""A three-node JetStream cluster survives losing a node: 2,000 notifications through two
gateways, two events and two notifiers (R3 streams, least-privilege users), one NATS node
killed and restarted in the middle: none lost, none delivered twice, delivery going on
while the node is down, and never two getUpdates pollers at once."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployfiles import SERVICES
from securesuite import (
    PERSON_ID,
    SecuredSuite,
    connect_as,
    generate_passwords,
    provision,
    secured_server,
    secured_suite,
    start_nats,
)

from cctelegram_common import subjects
from cctelegram_testing.nats import NatsServer, free_port
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NOTIFICATIONS = 2000
CONCURRENCY = 24
# Telegram's limits scaled up on both sides, so 2,000 messages to one chat take ~30 s
# instead of ~33 minutes; the notifier still paces itself and the sandbox still enforces.
RATE_SCALE = 60
# Long enough for the surviving two to elect new stream and consumer leaders (a few
# seconds) and go on delivering before the third comes back.
OUTAGE_S = 10.0
REPLICAS = {"auth": 1, "bridge-manager": 1, "events": 2, "notifier": 2, "gateway": 2}


def cluster_nodes(directory: Path, passwords: dict[str, str]) -> list[NatsServer]:
    """Three nats-server processes on loopback with the deploy cluster config; the routes
    and ports come from the command line (the config names compose's hosts)."""
    route_ports = [free_port() for _ in range(3)]
    routes = ",".join(f"nats://127.0.0.1:{port}" for port in route_ports)
    nodes = []
    for index, route_port in enumerate(route_ports, start=1):
        name = f"nats-{index}"
        nodes.append(
            secured_server(
                directory,
                {**passwords, "NATS_SERVER_NAME": name},
                config="nats-cluster.conf",
                name=name,
                extra_args=["--cluster", f"nats://127.0.0.1:{route_port}", "--routes", routes],
            )
        )
    return nodes


@pytest.fixture(scope="module")
def cluster_suite(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SecuredSuite, list[NatsServer], RunningSandbox]]:
    directory = tmp_path_factory.mktemp("cluster")
    passwords = generate_passwords()
    nodes = start_nats(lambda: cluster_nodes(directory, passwords))
    try:
        urls = [node.url for node in nodes]
        provision(urls, passwords, replicas=3)
        with (
            run_sandbox(rate_scale=RATE_SCALE, subprocess=True) as sandbox,
            secured_suite(directory / "suite", urls, passwords, sandbox) as suite,
        ):
            plan = []
            for service in SERVICES:
                extra = (
                    {"NOTIFIER_RATE_SCALE": str(RATE_SCALE)} if service.name == "notifier" else {}
                )
                env = suite.service_env(service, replicas=3, **extra)
                plan += [(service, env)] * REPLICAS[service.name]
            suite.start(plan)
            yield suite, nodes, sandbox
    finally:
        for node in nodes:
            node.stop()


async def send_all(gateways: list[str], api_key: str, run: str, on_progress: Any) -> dict[int, int]:
    """Every notification through the REST front door, alternating gateways; a failed call
    is retried (on the other gateway) with the same idempotency key, as clients should."""
    attempts: dict[int, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(NOTIFICATIONS):
        queue.put_nowait(number)
    sent = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent
        while not queue.empty():
            number = queue.get_nowait()
            for attempt in range(40):
                attempts[number] = attempt + 1
                gateway = gateways[(number + attempt) % len(gateways)]
                try:
                    response = await client.post(
                        f"{gateway}/v1/tools/send_telegram_message",
                        json={
                            "message": f"cluster {run} n{number:04d}",
                            "idempotency_key": f"{run}-{number}",
                        },
                    )
                    if response.status_code == 200 and response.json().get("success"):
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(min(0.1 * (attempt + 1), 1.0))
            else:
                raise AssertionError(f"notification {number} was never accepted")
            sent += 1
            await on_progress(sent)

    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=httpx.Timeout(15)
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return attempts


def delivered(sandbox: RunningSandbox, run: str) -> Counter[int]:
    """How often each notification number reached the person's chat."""
    counts: Counter[int] = Counter()
    pattern = re.compile(rf"cluster {re.escape(run)} n(\d{{4}})")
    for message in sandbox.messages(PERSON_ID):
        for match in pattern.finditer(str(message.get("text", ""))):
            counts[int(match.group(1))] += 1
    return counts


async def stream_leader(suite: SecuredSuite, stream: str) -> str:
    admin = await connect_as("admin", suite.urls, suite.passwords)
    try:
        info = await admin.jetstream().stream_info(stream)
        assert info.cluster is not None
        assert info.cluster.replicas is not None
        assert len(info.cluster.replicas) == 2, "R3: a leader and two followers"
        return str(info.cluster.leader)
    finally:
        await admin.close()


async def test_losing_a_node_loses_and_duplicates_nothing(
    cluster_suite: tuple[SecuredSuite, list[NatsServer], RunningSandbox],
) -> None:
    suite, nodes, sandbox = cluster_suite
    run = str(time.time_ns())[-8:]
    gateways = [process.url for process in suite.processes["gateway"]]
    # The node that leads the outbox: losing it forces a leader election mid-stream.
    leader = await stream_leader(suite, subjects.STREAM_OUTBOX)
    victim = next(node for node in nodes if f"nats-{nodes.index(node) + 1}" == leader)
    outage: dict[str, float] = {}

    async def on_progress(sent: int) -> None:
        if sent == NOTIFICATIONS // 2:
            outage["messages_before"] = sandbox.stats()["messages_by_bot"]
            outage["killed_at"] = time.monotonic()
            victim.kill()
            asyncio.get_running_loop().call_later(OUTAGE_S, restart)

    def restart() -> None:
        outage["messages_during"] = sandbox.stats()["messages_by_bot"]
        victim.start()
        outage["restarted_at"] = time.monotonic()

    started = time.monotonic()
    attempts = await send_all(gateways, suite.api_key, run, on_progress)
    accepted_in_s = time.monotonic() - started
    assert "restarted_at" in outage or await _wait_for(lambda: "restarted_at" in outage, 10)

    deadline = time.monotonic() + 90
    counts = delivered(sandbox, run)
    while len(counts) < NOTIFICATIONS and time.monotonic() < deadline:
        await asyncio.sleep(1)
        counts = delivered(sandbox, run)
    lost = [number for number in range(NOTIFICATIONS) if counts[number] == 0]
    duplicated = {number: count for number, count in counts.items() if count > 1}
    retried = sum(1 for count in attempts.values() if count > 1)
    print(  # the figures for the README
        f"\n{NOTIFICATIONS} accepted in {accepted_in_s:.1f}s ({retried} retried), "
        f"delivered in {time.monotonic() - started:.1f}s, lost {len(lost)}, "
        f"duplicated {len(duplicated)}, killed {leader}"
    )
    assert lost == [], await where_are(suite, run, lost)
    assert duplicated == {}
    # Delivery went on while a third of the cluster was down (after a leader election).
    assert outage["messages_during"] > outage["messages_before"]

    # Two notifiers, one poller: Telegram answers 409 when two getUpdates overlap.
    # (RunningSandbox.calls(method=...) collides with api()'s own `method`; ask directly.)
    # The sandbox records a call when it is answered, and an idle getUpdates long-polls for
    # up to 25 s: a fast run can end before the first poll returns, so wait for one.
    def polls() -> list[dict[str, Any]]:
        answer = httpx.get(f"{sandbox.api_url}/calls", params={"method": "getUpdates"}, timeout=10)
        calls: list[dict[str, Any]] = answer.json()
        return calls

    assert await _wait_for(lambda: bool(polls()), 40), "the notifiers poll for updates"
    conflicts = [call for call in polls() if call["status"] == 409]
    assert conflicts == []
    # And the node came back into the cluster.
    assert await stream_leader(suite, subjects.STREAM_OUTBOX)


async def where_are(suite: SecuredSuite, run: str, numbers: list[int]) -> str:
    """For a failure message: which streams and buckets hold each lost notification."""
    admin = await connect_as("admin", suite.urls, suite.passwords)
    js = admin.jetstream()
    found: dict[int, list[str]] = {number: [] for number in numbers}
    try:
        for stream in (
            subjects.STREAM_EVENTS,
            subjects.STREAM_OUTBOX,
            subjects.STREAM_DELIVERIES,
            subjects.STREAM_DEAD_LETTER,
        ):
            info = await js.stream_info(stream)
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    message = await js.get_msg(stream, sequence)
                except Exception:
                    continue
                body = (message.data or b"").decode(errors="replace")
                for number in numbers:
                    if f"cluster {run} n{number:04d}" in body:
                        found[number].append(f"{stream}#{sequence}: {body[:160]}")
                        event_id = re.search(r'"event_id":"([^"]+)"', body)
                        if stream == subjects.STREAM_EVENTS and event_id:
                            status = await js.key_value(subjects.KV_EVENT_STATUS)
                            try:
                                entry = await status.get(event_id.group(1))
                                found[number].append(f"status: {entry.value!r}")
                            except Exception as error:
                                found[number].append(f"status: {type(error).__name__}")
        consumer = await js.consumer_info(subjects.STREAM_EVENTS, subjects.CONSUMER_EVENTS_SUBMIT)
        floor = consumer.ack_floor.stream_seq if consumer.ack_floor else None
        found[-1] = [f"events-submit: ack floor {floor}, pending {consumer.num_pending}"]
    finally:
        await admin.close()
    return "\n".join(f"{number}: {places}" for number, places in found.items())


async def _wait_for(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.1)
    return False
