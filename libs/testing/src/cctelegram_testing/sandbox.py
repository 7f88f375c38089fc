"""Start a real sandbox server for a test (in a thread or a subprocess) and talk to it.

from cctelegram_testing.sandbox import run_sandbox

with run_sandbox(flood_control=False) as sandbox:        # or: async with run_sandbox()
    chat = sandbox.create_chat(type="private", user={"id": 42, "first_name": "Ann"})
    bot = telegram.Bot(sandbox.token, base_url=sandbox.bot_base_url)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import threading
import time
from types import TracebackType
from typing import Any

import httpx

from cctelegram_common.processes import ChildProcess, Output, ProcessSpec
from cctelegram_sandbox.app import create_app
from cctelegram_sandbox.config import SandboxConfig
from cctelegram_sandbox.entities import utf16_len
from cctelegram_sandbox.formatting import format_text
from cctelegram_sandbox.server import SandboxServer, bind_socket, socket_url
from cctelegram_sandbox.strict import KNOWN_PARAMETERS

# Telegram's own reading of a text (parse_mode entities, UTF-16 lengths), for tests that check
# what a service renders the way Telegram would.
__all__ = [
    "DEFAULT_TEST_TOKEN",
    "KNOWN_PARAMETERS",
    "RunningSandbox",
    "format_text",
    "run_sandbox",
    "utf16_len",
]

# A public, fake token: the sandbox is the only thing that ever sees it.
DEFAULT_TEST_TOKEN = "123456789:SANDBOX-test-token-0123456789abcdef"  # noqa: S105
_START_TIMEOUT_S = 20.0


class RunningSandbox:
    """A started sandbox: its URLs and blocking helpers for the control API.

    The helpers use a synchronous HTTP client; they are safe inside async tests because the
    sandbox runs in its own thread or process, though they block the test's loop briefly.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self._client = httpx.Client(base_url=f"{url}/sandbox/api", timeout=30.0, trust_env=False)

    @property
    def bot_base_url(self) -> str:
        """For python-telegram-bot: telegram.Bot(token, base_url=sandbox.bot_base_url)."""
        return f"{self.url}/bot"

    @property
    def bot_url(self) -> str:
        """The Bot API root for this token: f"{sandbox.bot_url}/sendMessage"."""
        return f"{self.url}/bot{self.token}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/sandbox/api"

    def api(self, http_method: str, path: str, json: Any = None, **params: Any) -> Any:
        """Call any control-API route; raises httpx.HTTPStatusError on a refusal."""
        response = self._client.request(http_method, path, json=json, params=params or None)
        response.raise_for_status()
        return response.json()

    def bot(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a Bot API method; returns Telegram's envelope whatever the status."""
        response = self._client.post(f"{self.bot_url}/{method}", json=params)
        envelope: dict[str, Any] = response.json()
        return envelope

    def create_chat(self, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api("POST", "/chats", json=fields)
        return result

    def write(self, chat_id: int, text: str, **fields: Any) -> dict[str, Any]:
        """A person writes in the chat (the update is queued for the bot)."""
        result: dict[str, Any] = self.api(
            "POST", f"/chats/{chat_id}/messages", json={"text": text, **fields}
        )
        return result

    def send_file(
        self,
        chat_id: int,
        content: bytes,
        *,
        photo: bool = False,
        file_name: str = "file.bin",
        mime_type: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A person sends a document (or, with ``photo=True``, a photo) with an optional
        ``caption`` and ``reply_to_message_id``."""
        kind = "photo" if photo else "document"
        upload: dict[str, Any] = {"content_base64": base64.b64encode(content).decode()}
        if not photo:
            upload.update(file_name=file_name, mime_type=mime_type)
        result: dict[str, Any] = self.api(
            "POST", f"/chats/{chat_id}/messages", json={kind: upload, **fields}
        )
        return result

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent or a person uploaded."""
        response = self._client.get(f"/files/{file_id}")
        response.raise_for_status()
        return response.content

    def press(self, chat_id: int, message_id: int, **fields: Any) -> dict[str, Any]:
        """A person presses a button: press(chat, msg, callback_data="ok") or text="Approve"."""
        result: dict[str, Any] = self.api(
            "POST", f"/chats/{chat_id}/messages/{message_id}/press", json=fields
        )
        return result

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("GET", f"/chats/{chat_id}/messages")
        return result

    def calls(self, method: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if method:
            params["method"] = method
        if since is not None:
            params["since"] = since
        result: list[dict[str, Any]] = self.api("GET", "/calls", **params)
        return result

    def fault(self, **fields: Any) -> dict[str, Any]:
        """Arm a fault: fault(method="sendMessage", times=2, status=502, raw_body="<html>")."""
        result: dict[str, Any] = self.api("POST", "/faults", json=fields)
        return result

    def set_state(self, chat_id: int, state: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api(
            "POST", f"/chats/{chat_id}/state", json={"state": state, **fields}
        )
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.api("GET", "/stats")
        return result

    def reset(self) -> None:
        self.api("POST", "/reset")

    def close(self) -> None:
        self._client.close()


class run_sandbox:  # noqa: N801 - used like a function: `with run_sandbox(...) as sandbox`
    """Run a real sandbox HTTP server on a free loopback port for the duration of a block.

    Works as `with` and `async with`. Keyword arguments are SandboxConfig fields (token,
    rate_scale, flood_control, auto_create_chats, clock, ...). `token` defaults to
    DEFAULT_TEST_TOKEN; pass token=None to accept any well-formed token. subprocess=True
    runs `python -m cctelegram_sandbox` instead of a thread (a clock cannot be injected then).
    Strict mode (`strict_params`) is on unless turned off: a stray Bot API parameter fails
    the test instead of being ignored the way Telegram ignores it.
    """

    def __init__(
        self,
        *,
        token: str | None = DEFAULT_TEST_TOKEN,
        host: str = "127.0.0.1",
        subprocess: bool = False,
        strict_params: bool = True,
        **config_fields: Any,
    ) -> None:
        self.config = SandboxConfig(token=token, strict_params=strict_params, **config_fields)
        self.host = host
        self.use_subprocess = subprocess
        self.running: RunningSandbox | None = None
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._process: ChildProcess | None = None

    def __enter__(self) -> RunningSandbox:
        url = self._start_process() if self.use_subprocess else self._start_thread()
        self.running = RunningSandbox(url, self.config.token or DEFAULT_TEST_TOKEN)
        return self.running

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RunningSandbox:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    def _start_thread(self) -> str:
        sock = bind_socket(self.host, 0)
        server = SandboxServer(create_app(self.config))
        self._server = server
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name="cctelegram-sandbox",
            daemon=True,
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return socket_url(sock)

    def _start_process(self) -> str:
        config = self.config
        command = [sys.executable, "-m", "cctelegram_sandbox", "--host", self.host, "--port", "0"]
        if config.token:
            command += ["--token", config.token]
            for extra in config.extra_tokens:
                command += ["--token", extra]
        command += ["--rate-scale", str(config.rate_scale)]
        if not config.flood_control:
            command.append("--no-flood-control")
        if config.auto_create_chats:
            command.append("--auto-create-chats")
        if config.strict_params:
            command.append("--strict-params")
        if config.demo_chats:
            command.append("--demo")
        process = ProcessSpec(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=Output.PIPE,
            stderr=Output.DISCARD,
        ).start()
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace").strip()
        prefix = "cctelegram-sandbox listening on "
        if not line.startswith(prefix):
            process.kill()
            raise RuntimeError(f"the sandbox process did not start: {line!r}")
        url = line.removeprefix(prefix)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/sandbox/api/stats", timeout=1.0, trust_env=False).is_success:
                    return url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the sandbox process did not answer")

    def stop(self) -> None:
        if self.running is not None:
            self.running.close()
            self.running = None
        if self._server is not None and self._thread is not None:
            self._server.stop()
            self._thread.join(timeout=10)
            self._server = self._thread = None
        if self._process is not None:
            self._process.stop(grace_s=10)
            self._process = None
