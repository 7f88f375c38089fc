"""Files both ways against `cctelegram up` (real NATS, the five services, the sandbox): a 10 MB
upload reaches the chat byte-identical, a person's photo in reply to a card comes back
byte-identical through GET /v1/files/{id}, a 51 MB upload is refused with a clear 413,
another client's file ids are 404, send_file over MCP sends a photo with its caption."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from cctelegram_cli.up.config import DEMO_USER_ID
from cctelegram_testing.suite import RunningSuite

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def gateway_url(suite: RunningSuite) -> str:
    return suite.mcp_url.removesuffix("/mcp")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat_messages(suite: RunningSuite) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages", timeout=10
    )
    response.raise_for_status()
    return list(response.json())


def eventually(predicate: Any, timeout_s: float = 60, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not met in {timeout_s}s")


def sandbox_bytes(suite: RunningSuite, file_id: str) -> bytes:
    response = httpx.get(f"{suite.sandbox_url}/sandbox/api/files/{file_id}", timeout=30)
    response.raise_for_status()
    return response.content


def png(width: int, height: int, filler: int) -> bytes:
    """Enough of a PNG for Telegram's (and the sandbox's) photo checks, with a unique body."""
    header = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    return (
        header
        + width.to_bytes(4, "big")
        + height.to_bytes(4, "big")
        + b"\x08\x02"
        + (os.urandom(filler))
    )


@pytest.fixture(scope="module")
def other_key(suite: RunningSuite) -> str:
    """An agent key of another client."""
    created = subprocess.run(
        [sys.executable, "-m", "cctelegram_cli", "keys", "create", "--client-id",
         f"other-{uuid.uuid4().hex[:6]}", "--role", "agent"],
        env={**os.environ, "NATS_URL": suite.nats_url},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return created.stdout.strip()


@pytest.fixture(scope="module")
def http(suite: RunningSuite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url(suite), headers=auth(suite.api_key), timeout=120) as c:
        yield c


def test_a_10_mb_file_goes_out_byte_identical(
    suite: RunningSuite, http: httpx.Client, other_key: str
) -> None:
    content = os.urandom(10 * MB)
    name = f"build-{uuid.uuid4().hex[:6]}.tar.gz"
    response = http.post(
        "/v1/files",
        files={"file": (name, content, "application/gzip")},
        data={
            "title": "Build artifacts",
            "description": "<all> of them & more",
            "type": "build_completed",
        },
    )
    assert response.status_code == 201, response.text
    result = response.json()
    file_id = result["file"]["id"]
    assert response.headers["location"] == f"/v1/files/{file_id}"
    assert result["file"] == {
        "id": file_id, "name": name, "type": "application/gzip", "size": 10 * MB,
        "kind": "document", "error": None,
    }  # fmt: skip

    def delivered() -> dict[str, Any] | None:
        return next(
            (m for m in chat_messages(suite) if (m.get("document") or {}).get("file_name") == name),
            None,
        )

    message = eventually(delivered, what="the document in the chat")
    assert message["document"]["file_size"] == 10 * MB
    # The caption is the notification's rendering (escaped, bold title).
    assert "Build artifacts" in message["caption"]
    assert "<all> of them & more" in message["caption"]
    assert sandbox_bytes(suite, message["document"]["file_id"]) == content

    def state() -> str:
        answer = http.post("/v1/tools/get_event_status", json={"event_id": result["event_id"]})
        return str(answer.json().get("state"))

    eventually(lambda: state() == "sent", what="event status sent")

    # The uploader downloads it; another client cannot tell it exists.
    downloaded = http.get(f"/v1/files/{file_id}")
    assert downloaded.status_code == 200
    assert downloaded.content == content
    assert downloaded.headers["content-type"] == "application/gzip"
    assert name in downloaded.headers["content-disposition"]
    stranger = httpx.get(f"{gateway_url(suite)}/v1/files/{file_id}", headers=auth(other_key))
    assert stranger.status_code == 404
    assert stranger.json()["error"]["code"] == "not_found"
    missing = http.get(f"/v1/files/{uuid.uuid4().hex}")
    assert missing.status_code == 404
    # Nor may it send another client's file by id.
    borrowed = httpx.post(
        f"{gateway_url(suite)}/v1/tools/send_file",
        json={"file_id": file_id},
        headers=auth(other_key),
    )
    assert borrowed.status_code == 404


def test_a_photo_a_person_sends_in_reply_comes_back_byte_identical(
    suite: RunningSuite, http: httpx.Client, other_key: str
) -> None:
    title = f"Is the whiteboard right? {uuid.uuid4().hex[:6]}"
    asked = http.post(
        "/v1/tools/send_approval_request",
        json={"title": title, "description": "Send a photo of it"},
    )
    assert asked.status_code == 200, asked.text
    card = eventually(
        lambda: next((m for m in chat_messages(suite) if title in (m.get("text") or "")), None),
        what="the card",
    )
    photo = png(1200, 900, 2 * MB)
    sent = httpx.post(
        f"{suite.sandbox_url}/sandbox/api/chats/{DEMO_USER_ID}/messages",
        json={
            "user_id": DEMO_USER_ID,
            "reply_to_message_id": card["message_id"],
            "photo": {"content_base64": base64.b64encode(photo).decode()},
        },
        timeout=30,
    )
    assert sent.status_code == 201, sent.text

    def with_file() -> dict[str, Any] | None:
        page = http.post("/v1/tools/get_telegram_responses", json={"limit": 20}).json()
        return next(
            (
                r
                for r in page["responses"]
                if r.get("approval_id") == asked.json()["approval_id"] and r.get("files")
            ),
            None,
        )

    response = eventually(with_file, what="the response with the photo")
    (file,) = response["files"]
    assert (file["kind"], file["type"], file["size"]) == ("photo", "image/jpeg", len(photo))
    assert file["error"] is None
    downloaded = http.get(f"/v1/files/{file['id']}")
    assert downloaded.status_code == 200
    assert downloaded.content == photo
    stranger = httpx.get(f"{gateway_url(suite)}/v1/files/{file['id']}", headers=auth(other_key))
    assert stranger.status_code == 404


def _raw_upload(suite: RunningSuite, headers: list[str], body_bytes: int) -> tuple[int, bytes]:
    """An upload over a bare socket: the gateway may answer (and close) before the client has
    sent everything, which an HTTP client library reports as a write error."""
    parts = urlsplit(gateway_url(suite))
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    head = "\r\n".join(
        [
            "POST /v1/files HTTP/1.1",
            f"Host: {parts.hostname}:{parts.port}",
            f"Authorization: Bearer {suite.api_key}",
            "Content-Type: multipart/form-data; boundary=b0undary",
            *headers,
            "",
            "",
        ]
    ).encode()
    sock.sendall(head)
    chunked = any(h.lower().startswith("transfer-encoding") for h in headers)

    def pump() -> None:
        opening = (
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
        )
        piece = b"\0" * MB
        try:
            payloads = [opening] + [piece] * (body_bytes // MB)
            for payload in payloads:
                sock.sendall(b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload)
        except OSError:
            pass  # the gateway said no and closed: expected

    if body_bytes:
        threading.Thread(target=pump, daemon=True).start()
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < 20:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


def test_a_51_mb_upload_is_refused_with_a_clear_error(suite: RunningSuite) -> None:
    # Declared: refused before a byte of the body is read.
    status, body = _raw_upload(suite, [f"Content-Length: {51 * MB}"], 0)
    assert status == 413
    assert b"a file may be at most 52428800 bytes" in body
    # Not declared (chunked): refused when the 50 MB (+ form) limit is crossed.
    status, body = _raw_upload(suite, ["Transfer-Encoding: chunked"], 51 * MB)
    assert status == 413
    assert b"50 MB" in body


def test_send_file_over_mcp_sends_a_photo_and_refuses_bad_input(
    suite: RunningSuite, http: httpx.Client
) -> None:
    photo = png(64, 48, 1000)
    title = f"Screenshot {uuid.uuid4().hex[:6]}"
    sent = http.post(
        "/v1/tools/send_file",
        json={
            "file_name": "shot.png",
            "content_base64": base64.b64encode(photo).decode(),
            "title": title,
        },
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["file"]["kind"] == "photo"
    message = eventually(
        lambda: next((m for m in chat_messages(suite) if title in (m.get("caption") or "")), None),
        what="the photo in the chat",
    )
    assert message["photo"][0]["file_size"] == len(photo)
    assert sandbox_bytes(suite, message["photo"][0]["file_id"]) == photo

    not_base64 = http.post(
        "/v1/tools/send_file", json={"file_name": "a.txt", "content_base64": "***"}
    )
    assert not_base64.status_code in (400, 422)
    assert not_base64.json()["error"]["field"] == "content_base64"
    not_a_photo = http.post(
        "/v1/tools/send_file",
        json={"file_name": "a.txt", "content_base64": "aGk=", "kind": "photo"},
    )
    assert not_a_photo.status_code == 422
    assert "a photo must be JPEG, PNG, GIF or WebP" in not_a_photo.json()["error"]["message"]
    neither = http.post("/v1/tools/send_file", json={"file_name": "a.txt"})
    assert neither.status_code == 422
    no_file = http.post("/v1/files", data={"title": "x"}, files={"other": ("a", b"a")})
    assert no_file.status_code == 422
    assert no_file.json()["error"]["field"] == "other"
