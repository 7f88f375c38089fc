"""Webhook deliveries to a real local receiver: secret header, retries, Retry-After, errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cctelegram_testing.sandbox import RunningSandbox, run_sandbox


class Receiver:
    """A tiny HTTP server that records deliveries and answers with scripted statuses."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[float, dict[str, str], dict[str, Any]]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.delivered = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.delivered:
                    receiver.deliveries.append((time.monotonic(), dict(self.headers), body))
                    receiver.delivered.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        with self.delivered:
            assert self.delivered.wait_for(lambda: len(self.deliveries) >= count, timeout_s)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for_info(
    sandbox: RunningSandbox, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """getWebhookInfo once the delivery loop has caught up with what the test expects."""
    deadline = time.monotonic() + 10
    while True:
        info: dict[str, Any] = sandbox.bot("getWebhookInfo")["result"]
        if condition(info):
            return info
        assert time.monotonic() < deadline, info
        time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with run_sandbox(webhook_initial_backoff_s=0.1) as sandbox:
        sandbox.create_chat(type="private", user={"id": 42, "first_name": "Ann"})
        yield sandbox


def test_delivery_with_secret_header_and_retry_after_a_500(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.script = [(500, {})]
    result = sandbox.bot("setWebhook", url=receiver.url, secret_token="s3cret_TOKEN-1")
    assert result == {"ok": True, "result": True, "description": "Webhook was set"}
    sandbox.write(42, "/start")
    receiver.wait_for(2)
    (_, first_headers, first), (_, headers, update) = receiver.deliveries
    assert first == update  # the same update, retried
    for delivery_headers in (first_headers, headers):
        assert delivery_headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret_TOKEN-1"
    assert update["message"]["text"] == "/start"
    info = wait_for_info(sandbox, lambda info: info["pending_update_count"] == 0)
    assert info["url"] == receiver.url
    assert info["pending_update_count"] == 0
    assert (
        info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    )
    assert isinstance(info["last_error_date"], int)


def test_retry_after_header_is_honoured(sandbox: RunningSandbox, receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "1"})]
    sandbox.bot("setWebhook", url=receiver.url)
    sandbox.write(42, "hello")
    receiver.wait_for(2)
    (first_at, _, _), (second_at, _, _) = receiver.deliveries
    assert second_at - first_at >= 0.9


def test_updates_wait_while_the_receiver_is_down(sandbox: RunningSandbox) -> None:
    sandbox.bot("setWebhook", url="http://127.0.0.1:9/unreachable")
    sandbox.write(42, "anyone?")
    info = wait_for_info(sandbox, lambda info: "last_error_message" in info)
    assert info["pending_update_count"] == 1
    assert info["last_error_message"].startswith("Connection failed")
