"""Least-privilege NATS with the real deploy/nats configuration: every service works with its
own user, and no service user can publish or subscribe outside its role, use another
service's consumer or inbox, or create, delete or purge a stream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats.errors
import nats.js.errors
import pytest
from deployfiles import SERVICES
from nats.js.api import StreamConfig
from securesuite import (
    PERSON_ID,
    SERVICE_USERS,
    SecuredSuite,
    connect_as,
    generate_passwords,
    inbox_prefix,
    provision,
    running_nats,
    secured_server,
    secured_suite,
    violations,
)

from cctelegram_common import streams, subjects
from cctelegram_common.catalog import channels
from cctelegram_testing.nats import NatsServer
from cctelegram_testing.sandbox import run_sandbox

pytestmark = pytest.mark.e2e

RPC_SERVERS = {"auth": "auth", "events": "events", "bridge": "bridge-manager"}


def catalogue_user(name: str) -> str | None:
    """A catalogue role ("gateway (webhook)", "internal publishers") as a NATS user."""
    first = name.split()[0]
    if first in SERVICE_USERS:
        return first
    return "publisher" if first == "internal" else None


def expected_rights() -> dict[str, dict[str, set[str]]]:
    """subject → {"publish": users, "subscribe": users}, from the catalogue and subjects.py.

    Stream subjects are published by their publishers and subscribed by nobody (consumers
    read through JetStream consumers, checked separately). RPCs the catalogue does not list
    yet come from subjects.py: callers are the gateway, except auth's key management,
    which only the admin (``cctelegram keys``) calls.
    """
    rights: dict[str, dict[str, set[str]]] = {}
    for channel in channels():
        publishers = {user for name in channel.publishers if (user := catalogue_user(name))}
        consumers = {user for name in channel.consumers if (user := catalogue_user(name))}
        subscribers = set() if channel.stream else consumers
        if "{service}" in channel.subject:
            # cctg.audit.{service}.{action}: each publisher writes only under its own name.
            for user in [*SERVICE_USERS, "publisher"]:
                subject = channel.subject.replace("{service}", user)
                subject = re.sub(r"\{[^}]+\}", "x1", subject)
                allowed = {user} & publishers
                rights[subject] = {"publish": allowed, "subscribe": subscribers}
            continue
        subject = re.sub(r"\{[^}]+\}", "x1", channel.subject)  # cctg.outbox.chat.{chat}
        rights[subject] = {"publish": publishers, "subscribe": subscribers}
    for name, value in vars(subjects).items():
        if not isinstance(value, str) or ".rpc." not in value or not name.isupper():
            continue
        if value in rights:
            continue
        server = RPC_SERVERS[value.split(".")[1]]
        callers = set() if value.startswith("cctg.auth.rpc.") else {"gateway"}
        rights[value] = {"publish": callers, "subscribe": {server}}
    rights.setdefault(subjects.APPROVAL_SUBMIT, {"publish": {"gateway"}, "subscribe": set()})
    return rights


async def accepted(connection: Any, attempts: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (kind, subject) publishes / subscriptions the server accepted. All are sent,
    then one PING: the server answers every refusal with an -ERR before its PONG."""
    errors: list[str] = connection.permission_errors
    before = len(errors)
    subscriptions = []
    for kind, subject in attempts:
        if kind == "publish":
            await connection.publish(subject, b"{}")
        else:
            subscriptions.append(await connection.subscribe(subject))
    await connection.flush(timeout=5)
    await asyncio.sleep(0.05)  # let the error callbacks run
    for subscription in subscriptions:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
    # nats-py reports 'permissions violation for publish to "<subject, lowercased>"'.
    refused = set(errors[before:])
    return {
        (kind, subject)
        for kind, subject in attempts
        if f"permissions violation for {'publish' if kind == 'publish' else 'subscription'} "
        f'to "{subject.lower()}"' not in " ".join(refused)
    }


@pytest.fixture
def passwords() -> dict[str, str]:
    return generate_passwords()


async def test_every_catalogued_subject_is_allowed_for_its_roles_and_denied_to_others(
    tmp_path: Path, passwords: dict[str, str]
) -> None:
    """On a server without streams (nothing published here is stored or consumed)."""
    rights = expected_rights()
    with running_nats(lambda: [secured_server(tmp_path, passwords)]) as (server,):
        mismatches: list[str] = []
        for user in [*SERVICE_USERS, "publisher"]:
            expected = {
                (kind, subject)
                for subject, allowed in rights.items()
                for kind in ("publish", "subscribe")
                if user in allowed[kind]
            }
            # Nobody but the owner reads another service's replies, nor the default inbox.
            inboxes = [f"{inbox_prefix(other)}.anything" for other in SERVICES]
            expected |= {
                ("subscribe", inbox)
                for inbox, other in zip(inboxes, SERVICES, strict=True)
                if other.name == user
            }
            attempts = [(kind, subject) for subject in rights for kind in ("publish", "subscribe")]
            attempts += [("subscribe", inbox) for inbox in [*inboxes, "_INBOX.anything"]]
            connection = await connect_as(user, [server.url], passwords)
            try:
                got = await accepted(connection, attempts)
            finally:
                await connection.close()
            mismatches += [f"{user} may {kind} {subject}" for kind, subject in got - expected]
            mismatches += [f"{user} may not {kind} {subject}" for kind, subject in expected - got]
        assert mismatches == []


def stream_fingerprint(info: Any) -> tuple[Any, ...]:
    return (
        info.config.name,
        tuple(info.config.subjects or ()),
        info.config.num_replicas,
        info.config.max_age,
        info.state.messages,
        info.state.first_seq,
        info.state.last_seq,
        info.state.consumer_count,
    )


async def snapshot(admin: Any) -> dict[str, tuple[Any, ...]]:
    js = admin.jetstream()
    names = [spec.name for spec in streams.stream_specs()]
    names += [f"KV_{bucket.bucket}" for bucket in streams.BUCKETS]
    return {name: stream_fingerprint(await js.stream_info(name)) for name in names}


@pytest.fixture(scope="module")
def running_suite(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SecuredSuite, NatsServer]]:
    directory = tmp_path_factory.mktemp("secured-suite")
    passwords = generate_passwords()
    with running_nats(lambda: [secured_server(directory, passwords)]) as (server,):
        output = provision([server.url], passwords)
        assert "created" in output
        with (
            run_sandbox(flood_control=False) as sandbox,
            secured_suite(directory, [server.url], passwords, sandbox) as suite,
        ):
            suite.start([(service, suite.service_env(service, replicas=1)) for service in SERVICES])
            yield suite, server


async def test_every_service_becomes_ready_and_delivers_with_its_own_user(
    running_suite: tuple[SecuredSuite, NatsServer],
) -> None:
    suite, server = running_suite
    for name in SERVICE_USERS:
        (process,) = suite.processes[name]
        ready = httpx.get(f"{process.url}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
    (gateway,) = suite.processes["gateway"]
    text = f"least privilege works {time.time_ns()}"
    response = httpx.post(
        f"{gateway.url}/v1/tools/send_telegram_message",
        json={"message": text},
        headers={"Authorization": f"Bearer {suite.api_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chat = httpx.get(f"{suite.sandbox_url}/sandbox/api/chats/{PERSON_ID}/messages", timeout=5)
        if text in chat.text:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the notification never reached the chat")
    # A rate-limited key spends from the budget every gateway replica shares (its KV bucket).
    created = httpx.post(
        f"{gateway.url}/v1/keys",
        json={"client_id": "limited-agent", "role": "agent", "rate_limit_per_minute": 2},
        headers={"Authorization": f"Bearer {suite.api_key}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    limited = {"Authorization": f"Bearer {created.json()['api_key']}"}
    statuses = [
        httpx.post(
            f"{gateway.url}/v1/tools/list_event_types", json={}, headers=limited, timeout=30
        ).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert "rate_limit_budget_unreachable" not in gateway.output()
    # Doing its job never needed anything its user may not do.
    assert [v for v in violations(server.log_file) if v[0] in SERVICE_USERS] == []


async def test_files_both_ways_need_nothing_beyond_the_service_users(
    running_suite: tuple[SecuredSuite, NatsServer],
) -> None:
    """An upload stored by the gateway and sent by the notifier; a person's photo in reply to
    a card fetched by the notifier, given its owner by events, downloaded through the gateway."""
    suite, server = running_suite
    (gateway,) = suite.processes["gateway"]
    headers = {"Authorization": f"Bearer {suite.api_key}"}
    content = b"%PDF-1.4 least privilege " + bytes(range(256)) * 1000
    uploaded = httpx.post(
        f"{gateway.url}/v1/files",
        files={"file": ("report.pdf", content, "application/pdf")},
        headers=headers,
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    asked = httpx.post(
        f"{gateway.url}/v1/tools/send_approval_request",
        json={"title": f"Photo please {time.time_ns()}", "description": "of the rack"},
        headers=headers,
        timeout=30,
    )
    assert asked.status_code == 200, asked.text
    chat_url = f"{suite.sandbox_url}/sandbox/api/chats/{PERSON_ID}/messages"
    card = None
    document = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (card is None or document is None):
        messages = httpx.get(chat_url, timeout=5).json()
        title = asked.json()["approval_id"]
        card = card or next(
            (m for m in messages if m.get("reply_markup") and "Photo please" in m.get("text", "")
             and title), None,
        )  # fmt: skip
        document = document or next(
            (m for m in messages if (m.get("document") or {}).get("file_name") == "report.pdf"),
            None,
        )
        await asyncio.sleep(0.2)
    assert card is not None
    assert document is not None
    photo = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (4).to_bytes(4, "big") * 2 + b"\x08\x02"
    photo += bytes(range(256)) * 10
    sent = httpx.post(
        chat_url,
        json={
            "user_id": PERSON_ID,
            "reply_to_message_id": card["message_id"],
            "photo": {"content_base64": base64.b64encode(photo).decode()},
        },
        timeout=10,
    )
    assert sent.status_code == 201, sent.text
    deadline = time.monotonic() + 30
    files: list[Any] = []
    while time.monotonic() < deadline and not files:
        page = httpx.post(
            f"{gateway.url}/v1/tools/get_telegram_responses",
            json={"limit": 50},
            headers=headers,
            timeout=30,
        ).json()
        files = [
            file
            for response in page["responses"]
            if response.get("approval_id") == asked.json()["approval_id"]
            for file in response.get("files", [])
        ]
        await asyncio.sleep(0.2)
    assert files, "the photo is listed with the response"
    assert files[0]["id"], files
    downloaded = httpx.get(f"{gateway.url}/v1/files/{files[0]['id']}", headers=headers)
    assert downloaded.content == photo
    assert [v for v in violations(server.log_file) if v[0] in SERVICE_USERS] == []


async def test_service_users_cannot_create_delete_or_purge_streams(
    running_suite: tuple[SecuredSuite, NatsServer],
) -> None:
    suite, server = running_suite
    admin = await connect_as("admin", suite.urls, suite.passwords)
    try:
        before = await snapshot(admin)

        async def refused(operation: Any) -> bool:
            try:
                await operation
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
                return True
            return False

        outcomes: dict[str, bool] = {}
        for user in SERVICE_USERS:
            connection = await connect_as(user, suite.urls, suite.passwords)
            js = connection.jetstream(timeout=1.5)
            try:
                attempts = {
                    "delete CCTG_EVENTS": js.delete_stream(subjects.STREAM_EVENTS),
                    "purge CCTG_OUTBOX": js.purge_stream(subjects.STREAM_OUTBOX),
                    "purge own KV stream": js.purge_stream(f"KV_{subjects.KV_BRIDGE}"),
                    "delete a KV bucket": js.delete_key_value(subjects.KV_KEYS),
                    "create a stream": js.add_stream(
                        StreamConfig(
                            name=f"ROGUE_{user.upper().replace('-', '_')}", subjects=["rogue.>"]
                        )
                    ),
                    "widen CCTG_AUDIT": js.update_stream(
                        StreamConfig(
                            name=subjects.STREAM_AUDIT, subjects=[subjects.AUDIT_ALL, "rogue.>"]
                        )
                    ),
                    "delete a message": js.delete_msg(subjects.STREAM_EVENTS, 1),
                }
                results = await asyncio.gather(*(refused(op) for op in attempts.values()))
                for what, was_refused in zip(attempts, results, strict=True):
                    outcomes[f"{user}: {what}"] = was_refused
            finally:
                await connection.close()
        assert [what for what, was_refused in outcomes.items() if not was_refused] == []
        after = await snapshot(admin)
        # Only what the running services themselves did may have moved: the same streams,
        # subjects, replicas and ages; no message removed (first sequences unchanged).
        for name, fingerprint in before.items():
            assert after[name][:4] == fingerprint[:4], name
            assert after[name][5] == fingerprint[5] or name in (
                subjects.STREAM_OUTBOX,  # a work queue: the notifier's acks remove messages
                *(f"KV_{bucket.bucket}" for bucket in streams.BUCKETS),
            ), name
        names = {name async for name in _stream_names(admin)}
        assert not any(name.startswith("ROGUE_") for name in names)
    finally:
        await admin.close()
    denied = {(user, subject) for user, _kind, subject in violations(server.log_file)}
    assert ("gateway", f"$JS.API.STREAM.DELETE.{subjects.STREAM_EVENTS}") in denied


async def _stream_names(admin: Any) -> Any:
    for name in await admin.jetstream().streams_info():
        yield name.config.name


async def test_service_users_cannot_use_another_services_consumer(
    running_suite: tuple[SecuredSuite, NatsServer],
) -> None:
    """Durable consumers are named <service>-<handler>: only that service may pull or ack."""
    suite, _server = running_suite
    admin = await connect_as("admin", suite.urls, suite.passwords)
    try:
        consumers: list[tuple[str, str]] = []
        for spec in streams.stream_specs():
            for info in await admin.jetstream().consumers_info(spec.name):
                if info.config.durable_name:
                    consumers.append((spec.name, info.config.durable_name))
    finally:
        await admin.close()
    durable_constants = {
        value for name, value in vars(subjects).items() if name.startswith("CONSUMER_")
    }
    assert {name for _stream, name in consumers} == durable_constants, "every consumer is running"
    mismatches: list[str] = []
    for user in SERVICE_USERS:
        connection = await connect_as(user, suite.urls, suite.passwords)
        try:
            for stream, consumer in consumers:
                owner = consumer.split("-")[0]
                for subject in (
                    f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
                    f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{consumer}",
                    f"$JS.API.CONSUMER.DELETE.{stream}.{consumer}",
                ):
                    if owner == user and "DELETE" not in subject:
                        continue  # the owner's own use is proven by the delivery test
                    # A pull request without a reply subject is ignored by the server, so an
                    # accepted publish here would not disturb the running owner.
                    if ("publish", subject) in await accepted(connection, [("publish", subject)]):
                        mismatches.append(f"{user} may {subject}")
        finally:
            await connection.close()
    assert mismatches == []
