"""The NATS contract is what runs: every subscription and consumer of a running suite is
declared in some service's ``contract.py``, every declaration is running, and the committed
AsyncAPI document is the one those declarations make.

The suite runs as ``cctelegram up`` (every service a real process) on a nats-server of this
test with its monitoring port open; what the services really subscribe is read from the
server (``/connz`` for core subscriptions by connection name, ``/jsz`` for JetStream
consumers), not from the services' own account of themselves.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cctelegram_cli.natsserver import NatsServer, free_port
from cctelegram_common.asyncapi import build_document
from cctelegram_common.catalog import installed_contracts
from cctelegram_common.messaging import ServiceContract
from cctelegram_testing.suite import RunningSuite, start_suite

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"auth", "bridge-manager", "events", "gateway", "notifier"}


def test_the_committed_document_is_generated_from_the_installed_contracts() -> None:
    committed = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    assert committed == json.loads(build_document()), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )
    assert {contract.service for contract in installed_contracts()} == SERVICES


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, str]]:
    port = free_port()
    directory = Path(tmp_path_factory.mktemp("contract-nats"))
    with NatsServer(directory, extra_args=["-m", str(port)]) as server:
        yield server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def suite(
    monitored: tuple[NatsServer, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSuite]:
    server, _monitor = monitored
    running = start_suite(
        Path(tmp_path_factory.mktemp("contract-suite")), CCTELEGRAM_NATS_URL=server.url
    )
    try:
        yield running
    finally:
        running.stop()


def _pattern(declared: str) -> re.Pattern[str]:
    """A declared subject as a regex over real subjects and filters: ``{placeholder}`` and
    ``*`` stand for one token, ``>`` for the rest."""

    def token(part: str) -> str:
        if part == ">":
            return ".+"
        if part == "*" or re.fullmatch(r"\{[^}]+\}", part):
            return "[^.]+"
        return re.escape(part)

    return re.compile(r"\.".join(token(part) for part in declared.split(".")))


def _core_subscriptions(monitor: str) -> dict[str, set[tuple[str, str | None]]]:
    """service → {(subject, queue group)} of its connections, inboxes left out."""
    connz = httpx.get(f"{monitor}/connz", params={"subs": "detail", "limit": 1000}).json()
    found: dict[str, set[tuple[str, str | None]]] = {}
    for connection in connz["connections"]:
        name = connection.get("name") or ""
        if not name.startswith("cctelegram-"):
            continue
        service = name.removeprefix("cctelegram-")
        subscriptions = found.setdefault(service, set())
        for sub in connection.get("subscriptions_list_detail") or []:
            if sub["subject"].startswith("_INBOX"):
                continue  # replies and pull-consumer deliveries
            subscriptions.add((sub["subject"], sub.get("qgroup") or None))
    return found


def _consumers(monitor: str) -> list[dict[str, Any]]:
    jsz = httpx.get(f"{monitor}/jsz", params={"consumers": "true", "config": "true"}).json()
    found: list[dict[str, Any]] = []
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            for consumer in stream.get("consumer_detail") or []:
                found.append({"stream": stream["name"], **consumer})
    return found


def _filters(consumer: dict[str, Any]) -> list[str]:
    config = consumer.get("config") or {}
    return list(config.get("filter_subjects") or []) or [config.get("filter_subject") or ">"]


def _declared_core(contract: ServiceContract) -> set[tuple[str, str | None]]:
    return {(rpc.subject, contract.rpc_queue) for rpc in contract.rpcs} | {
        (listen.subject, None) for listen in contract.listens
    }


def test_every_running_subscription_is_declared_and_every_declaration_runs(
    suite: RunningSuite, monitored: tuple[NatsServer, str]
) -> None:
    _server, monitor = monitored
    contracts = {contract.service: contract for contract in installed_contracts()}
    durables = [c for contract in contracts.values() for c in contract.consumes]
    deadline = time.monotonic() + 30
    while True:  # the services report ready once subscribed; consumers may lag a moment
        core = _core_subscriptions(monitor)
        consumers = _consumers(monitor)
        named = {c["name"] for c in consumers if (c.get("config") or {}).get("durable_name")}
        fixed = {c.durable for c in durables if "{" not in c.durable}
        if (set(core) >= SERVICES and fixed <= named) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    # Core NATS: each service subscribes exactly its RPCs (in its queue group) and listens.
    assert set(core) == SERVICES
    for service, subscriptions in core.items():
        assert subscriptions == _declared_core(contracts[service]), service

    # Durable consumers: each is declared (name and filter), each fixed declaration exists.
    for consumer in consumers:
        config = consumer.get("config") or {}
        if not config.get("durable_name"):
            continue
        matches = [
            declared
            for declared in durables
            if _pattern(declared.durable).fullmatch(consumer["name"])
            and declared.stream == consumer["stream"]
            and any(_pattern(declared.subject).fullmatch(f) for f in _filters(consumer))
        ]
        assert matches, f"undeclared durable consumer {consumer['name']} on {consumer['stream']}"
    assert fixed <= named

    # Ephemeral consumers (ordered views while a replica reads): each is a declared watch.
    watched = [watch.subject for contract in contracts.values() for watch in contract.watches]
    for consumer in consumers:
        if (consumer.get("config") or {}).get("durable_name"):
            continue
        for subject in _filters(consumer):
            assert any(_pattern(w).fullmatch(subject) for w in watched), (
                f"undeclared watch {subject} on {consumer['stream']}"
            )

    # And every declared subscription is a channel of the committed document.
    document = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    addresses = {channel["address"] for channel in document["channels"].values()}
    for contract in contracts.values():
        for subject, _queue in _declared_core(contract):
            assert subject in addresses
        for declared in contract.consumes:
            assert declared.channel in addresses
        for watch in contract.watches:
            assert watch.subject in addresses
