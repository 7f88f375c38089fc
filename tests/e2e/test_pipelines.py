"""Pipelines against `cctelegram up` and the sandbox: the REST resources (201 + Location,
Idempotency-Key, long-poll, cancel, other clients' ids), decision webhooks (signature,
retries after 5xx, one delivery per outcome, private destinations refused, a 4xx
dead-lettered with its reason) and the exit codes of `cctelegram approve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_common import subjects
from cctelegram_common.contracts.webhooks import WebhookDeadLettered
from cctelegram_common.webhooks import verify_signature
from cctelegram_testing.suite import RunningSuite, start_suite

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSuite]:
    running = start_suite(
        Path(tmp_path_factory.mktemp("cctelegram-pipelines")),
        CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )
    try:
        yield running
    finally:
        running.stop()


def base_url(suite: RunningSuite) -> str:
    return suite.mcp_url.removesuffix("/mcp")


@pytest.fixture(scope="module")
def api(suite: RunningSuite) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=base_url(suite),
        headers={"Authorization": f"Bearer {suite.api_key}"},
        timeout=httpx.Timeout(10, read=150),
    ) as client:
        yield client


@pytest.fixture(scope="module")
def webhook_secret(api: httpx.Client, suite: RunningSuite) -> str:
    key_id = suite.api_key.split("_")[1]
    made = api.post(f"/v1/keys/{key_id}/webhook-secret")
    assert made.status_code == 201, made.text
    secret = str(made.json()["webhook_secret"])
    assert secret.startswith("whsec_")
    return secret


# --- a webhook receiver ----------------------------------------------------------------------
@dataclass
class Receiver:
    """Records every POST; answers the scripted statuses first, then 200."""

    statuses: list[int] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def for_path(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [hit for hit in self.seen if hit["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                scripted = [s for s in state.statuses if s]
                status = 200
                if self.path.startswith("/flaky") and scripted:
                    status = state.statuses.pop(0)
                if self.path.startswith("/gone"):
                    status = 410
                state.seen.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers.items()),
                        "body": body,
                        "status": status,
                        "at": time.monotonic(),
                    }
                )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- helpers -------------------------------------------------------------------------------
def chat_messages(suite: RunningSuite) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=5
    )
    response.raise_for_status()
    return list(response.json())


def eventually(predicate: Any, timeout_s: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met in {timeout_s}s")


def card(suite: RunningSuite, title: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        return next(
            (
                message
                for message in chat_messages(suite)
                if title in (message.get("text") or "")
                and (message.get("reply_markup") or {}).get("inline_keyboard")
            ),
            None,
        )

    found: dict[str, Any] = eventually(find, what=f"card {title!r}")
    return found


def press(suite: RunningSuite, title: str, option: str) -> None:
    message = card(suite, title)
    pressed = httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages/"
        f"{message['message_id']}/press",
        json={"user_id": DEMO_USER_ID, "text": option},
        timeout=5,
    )
    assert pressed.status_code < 400, pressed.text


def create_approval(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"title": "t", "description": "d", "source": "ci", **fields}
    created = api.post("/v1/approvals", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/approvals/{created.json()['approval_id']}"
    return dict(created.json())


def cancel_once_created(api: httpx.Client, approval_id: str, **body: Any) -> None:
    """Cancel an approval as soon as the events service has created it: ``POST /v1/approvals``
    answers once the command is stored, and on a busy machine the record may come a moment
    later (a cancel before it is a 404)."""
    deadline = time.monotonic() + 30
    while True:
        response = api.post(f"/v1/approvals/{approval_id}/cancel", json=body)
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert response.status_code == 200, response.text


# --- REST resources ----------------------------------------------------------------------------
def test_events_resource_created_idempotent_and_readable(api: httpx.Client) -> None:
    body = {"type": "build_completed", "title": "Build 7 passed", "description": "all green"}
    first = api.post("/v1/events", json=body, headers={"Idempotency-Key": "build-7"})
    again = api.post("/v1/events", json=body, headers={"Idempotency-Key": "build-7"})
    assert first.status_code == again.status_code == 201, first.text
    event_id = first.json()["event_id"]
    assert again.json()["event_id"] == event_id
    assert first.headers["location"] == f"/v1/events/{event_id}"
    conflicting = api.post(
        "/v1/events",
        json={**body, "idempotency_key": "other"},
        headers={"Idempotency-Key": "build-7"},
    )
    assert conflicting.status_code == 422
    assert conflicting.json()["error"]["field"] == "idempotency_key"

    def sent() -> dict[str, Any] | None:
        status = api.get(first.headers["location"])
        assert status.status_code == 200, status.text
        return status.json() if status.json()["state"] == "sent" else None

    assert eventually(sent, what="event sent")["event_id"] == event_id
    assert api.get("/v1/events/nope").status_code == 404
    responses = api.get("/v1/responses", params={"limit": 5})
    assert responses.status_code == 200
    assert api.get("/v1/bridge").json()["running"] is True
    assert api.post("/v1/bridge/stop").status_code == 200
    assert api.get("/v1/bridge").json()["paused"] is True
    assert api.post("/v1/bridge/start").status_code == 200
    assert api.post("/v1/bridge/explode").status_code == 422


def test_long_poll_returns_as_soon_as_a_person_presses(
    api: httpx.Client, suite: RunningSuite
) -> None:
    created = create_approval(api, title="Long-poll gate", options=["Approve", "Reject"])
    card(suite, "Long-poll gate")
    answer: dict[str, Any] = {}

    def poll() -> None:
        response = api.get(f"/v1/approvals/{created['approval_id']}", params={"wait": 60})
        answer["at"] = time.monotonic()
        answer["wall"] = time.time()
        answer["response"] = response

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.5)  # the long-poll is waiting
    assert "response" not in answer
    pressed_at = time.monotonic()
    press(suite, "Long-poll gate", "Approve")
    waiter.join(30)
    response = answer["response"]
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    decided_at = datetime.fromisoformat(response.json()["decided_at"]).timestamp()
    print(
        f"long-poll returned {1000 * (answer['at'] - pressed_at):.0f} ms after the press "
        f"({1000 * (answer['wall'] - decided_at):.0f} ms after events recorded the decision)"
    )
    # Already decided: answers at once, wait or not.
    again = api.get(f"/v1/approvals/{created['approval_id']}", params={"wait": 120})
    assert again.json()["status"] == "approved"
    assert (
        api.get(f"/v1/approvals/{created['approval_id']}", params={"wait": 121}).status_code == 422
    )


def test_other_clients_ids_are_not_found(api: httpx.Client) -> None:
    made = api.post("/v1/keys", json={"client_id": "someone-else", "role": "agent"})
    assert made.status_code == 200, made.text
    other = {"Authorization": f"Bearer {made.json()['api_key']}"}
    approval = create_approval(api, title="Mine only")
    event = api.post(
        "/v1/events", json={"type": "info_notification", "title": "mine", "description": "x"}
    ).json()
    approval_id = approval["approval_id"]
    assert api.get(f"/v1/approvals/{approval_id}").status_code == 200
    for method, path, params in [
        ("GET", f"/v1/approvals/{approval_id}", {}),
        ("GET", f"/v1/approvals/{approval_id}", {"wait": 2}),
        ("POST", f"/v1/approvals/{approval_id}/cancel", {}),
        ("GET", f"/v1/events/{event['event_id']}", {}),
    ]:
        response = api.request(method, path, params=params, headers=other)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    cancelled = api.post(f"/v1/approvals/{approval_id}/cancel", json={"reason": "done"})
    assert cancelled.json()["status"] == "cancelled"
    assert api.post(f"/v1/approvals/{approval_id}/cancel").status_code == 409


# --- webhooks ----------------------------------------------------------------------------------
def test_private_and_plain_http_callbacks_are_refused(api: httpx.Client) -> None:
    for url in (
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://ci.example.com/hook",
        "https://user:pw@ci.example.com/hook",
    ):
        refused = api.post(
            "/v1/approvals", json={"title": "t", "description": "d", "callback_url": url}
        )
        assert refused.status_code == 422, (url, refused.text)
        assert refused.json()["error"]["field"] == "callback_url", url


def test_webhook_signed_retried_after_5xx_once_per_outcome(
    api: httpx.Client, suite: RunningSuite, receiver: Receiver, webhook_secret: str
) -> None:
    receiver.statuses[:] = [503, 500]
    approved = create_approval(
        api,
        title="Webhook gate",
        options=["Approve", "Reject"],
        callback_url=receiver.url("/flaky"),
    )
    cancelled = create_approval(api, title="Webhook cancel", callback_url=receiver.url("/cancel"))
    expired = create_approval(
        api, title="Webhook expiry", callback_url=receiver.url("/expire"), expires_in_minutes=0.03
    )
    press(suite, "Webhook gate", "Approve")
    cancel_once_created(api, cancelled["approval_id"], reason="not needed")

    def delivered(path: str) -> list[dict[str, Any]] | None:
        hits = receiver.for_path(path)
        return hits if any(hit["status"] == 200 for hit in hits) else None

    flaky = eventually(lambda: delivered("/flaky"), 60, "approved webhook delivered")
    assert [hit["status"] for hit in flaky] == [503, 500, 200]
    cancel_hits = eventually(lambda: delivered("/cancel"), 30, "cancel webhook")
    expire_hits = eventually(lambda: delivered("/expire"), 30, "expiry webhook")
    time.sleep(3)  # nothing more arrives: one delivery per outcome
    assert len(receiver.for_path("/flaky")) == 3
    assert len(receiver.for_path("/cancel")) == 1
    assert len(receiver.for_path("/expire")) == 1

    for hits, approval, event in (
        (flaky, approved, "approval.approved"),
        (cancel_hits, cancelled, "approval.cancelled"),
        (expire_hits, expired, "approval.expired"),
    ):
        delivery_ids = {hit["headers"]["X-CCTelegram-Delivery"] for hit in hits}
        assert len(delivery_ids) == 1  # retries keep the delivery id
        for hit in hits:
            headers = hit["headers"]
            assert headers["X-CCTelegram-Event"] == event
            assert verify_signature(webhook_secret, headers["X-CCTelegram-Signature"], hit["body"])
            assert not verify_signature(
                webhook_secret, headers["X-CCTelegram-Signature"], hit["body"] + b" "
            )
            payload = json.loads(hit["body"])
            assert payload["event"] == event
            assert payload["delivery_id"] in delivery_ids
            assert payload["approval"]["approval_id"] == approval["approval_id"]
            assert payload["approval"]["status"] == event.split(".")[1]
    print(
        "webhook retries: "
        + ", ".join(f"{hit['at'] - flaky[0]['at']:.1f}s→{hit['status']}" for hit in flaky)
    )


# --- cctelegram approve ---------------------------------------------------------------------
def run_cli(suite: RunningSuite, *args: str, key: str | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CCTELEGRAM_URL": base_url(suite),
        "CCTELEGRAM_API_KEY": suite.api_key if key is None else key,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "cctelegram_cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cctelegram_approve_exit_codes(suite: RunningSuite) -> None:
    approving = run_cli(suite, "approve", "--title", "CLI deploy A", "--wait", "60s")
    rejecting = run_cli(
        suite, "approve", "--title", "CLI deploy B", "--option", "Ship", "--option", "Reject"
    )
    expiring = run_cli(suite, "approve", "--title", "CLI deploy C", "--wait", "3s")
    press(suite, "CLI deploy A", "Approve")
    press(suite, "CLI deploy B", "Reject")
    out, err = approving.communicate(timeout=60)
    assert approving.returncode == 0, (out, err)
    assert out.startswith("approved"), out
    out, err = rejecting.communicate(timeout=60)
    assert rejecting.returncode == 1, (out, err)
    assert out.startswith("rejected"), out
    out, err = expiring.communicate(timeout=60)
    assert expiring.returncode == 2, (out, err)

    notified = run_cli(suite, "notify", "Deploy done\nv2.4.0 is live", "--project", "api")
    out, err = notified.communicate(timeout=30)
    assert notified.returncode == 0, err
    assert out.startswith("queued ")

    for args, key in (
        (("approve", "--title", "x"), "cctg_AAAAAAAAAAAA_" + "A" * 43),  # unknown key
        (("approve", "--title", "x"), ""),  # no key
        (("approve", "--title", "x", "--wait", "soon"), None),  # bad duration
        (("approve",), None),  # no title
    ):
        refused = run_cli(suite, *args, key=key)
        out, err = refused.communicate(timeout=30)
        assert refused.returncode == 3, (args, out, err)
        assert err.strip(), args


async def test_a_refused_delivery_is_dead_lettered_with_its_reason(
    api: httpx.Client, suite: RunningSuite, receiver: Receiver, webhook_secret: str
) -> None:
    assert webhook_secret
    gone = create_approval(api, title="Webhook gone", callback_url=receiver.url("/gone"))
    cancel_once_created(api, gone["approval_id"])
    connection = await nats.connect(suite.nats_url)
    try:
        js = connection.jetstream()
        subscription = await js.subscribe(subjects.DEAD_LETTER_WEBHOOK, ordered_consumer=True)
        letter = None
        deadline = time.monotonic() + 90  # bounded: a loaded machine may hold the batch before it
        while letter is None and time.monotonic() < deadline:
            try:
                message = await subscription.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                continue
            candidate = WebhookDeadLettered.model_validate_json(message.data)
            if candidate.delivery.approval_id == gone["approval_id"]:
                letter = candidate
        assert letter is not None, "no dead letter"
        assert letter.last_status == 410
        assert "410" in letter.reason
        assert len(receiver.for_path("/gone")) == 1  # not retried
    finally:
        await connection.close()


def test_cctelegram_keys_webhook_secret_prints_it_once(
    api: httpx.Client, suite: RunningSuite
) -> None:
    made = api.post("/v1/keys", json={"client_id": "ci-secret", "role": "agent"})
    assert made.status_code == 200, made.text
    key_id = made.json()["key"]["key_id"]
    shown = subprocess.run(
        [
            *(sys.executable, "-m", "cctelegram_cli", "keys"),
            *("--nats-url", suite.nats_url, "webhook-secret", key_id),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().startswith("whsec_")
    assert "not shown again" in shown.stderr
    # Agents may not mint secrets; the REST twin is admin-only.
    agent = {"Authorization": f"Bearer {made.json()['api_key']}"}
    assert api.post(f"/v1/keys/{key_id}/webhook-secret", headers=agent).status_code == 403
