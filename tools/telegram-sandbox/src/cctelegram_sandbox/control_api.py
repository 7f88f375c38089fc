"""The control API under /sandbox/api/: what tests and the web page use to play the people."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .bot_api import MAX_DOCUMENT_BYTES, MAX_PHOTO_BYTES
from .config import TOKEN_PATTERN
from .models import Chat, JsonDict, StoredFile
from .state import ControlError, Sandbox

Endpoint = Callable[[Request], Awaitable[Response]]
_SSE_COALESCE_S = 0.05
_SSE_KEEPALIVE_S = 15.0
_SSE_MAX_AGE_S = 300.0


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _guarded(handler: Endpoint) -> Endpoint:
    """Turn refused requests and malformed input into {"error": ...} with a 4xx status."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ControlError as error:
            return _error(error.status, error.message)
        except (ValueError, TypeError, KeyError) as error:
            return _error(400, f"bad request: {error}")

    return endpoint


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _body(request: Request) -> JsonDict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        raise ControlError(400, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError(400, "the body must be a JSON object")
    return body


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ControlError(400, f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ControlError(400, f"{name} must be an integer") from None


class ControlApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def _chat(self, request: Request) -> Chat:
        chat_id = _optional_int(request.path_params["chat_id"], "chat_id")
        assert chat_id is not None
        return self.sandbox.control_chat(chat_id)

    # -- chats -----------------------------------------------------------------------------

    async def list_chats(self, request: Request) -> Response:
        return JSONResponse([self.sandbox.chat_view(chat) for chat in self.sandbox.chats.values()])

    async def create_chat(self, request: Request) -> Response:
        body = await _body(request)
        user = body.get("user")
        if user is not None and not isinstance(user, dict):
            raise ControlError(400, "user must be an object {id?, first_name?, username?}")
        topics = body.get("topics")
        if topics is not None and not (
            isinstance(topics, list) and all(isinstance(name, str) for name in topics)
        ):
            raise ControlError(400, "topics must be a list of names")
        chat = self.sandbox.create_chat(
            str(body.get("type", "private")),
            chat_id=_optional_int(body.get("id"), "id"),
            title=body.get("title"),
            user=user,
            username=body.get("username"),
            topics=topics,
        )
        return JSONResponse(self.sandbox.chat_view(chat), status_code=201)

    async def get_chat(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.chat_view(self._chat(request)))

    async def create_topic(self, request: Request) -> Response:
        body = await _body(request)
        topic = self.sandbox.create_topic(self._chat(request), str(body.get("name", "")))
        return JSONResponse(
            {"message_thread_id": topic.message_thread_id, "name": topic.name}, status_code=201
        )

    async def topic_state(self, request: Request) -> Response:
        body = await _body(request)
        chat = self._chat(request)
        thread_id = _optional_int(request.path_params["thread_id"], "thread_id")
        topic = self.sandbox.set_topic_state(chat, thread_id or 0, str(body.get("state", "")))
        return JSONResponse(
            {
                "message_thread_id": topic.message_thread_id,
                "name": topic.name,
                "closed": topic.closed,
                "deleted": topic.deleted,
            }
        )

    async def set_state(self, request: Request) -> Response:
        body = await _body(request)
        chat = self._chat(request)
        new_chat = self.sandbox.set_chat_state(
            chat,
            str(body.get("state", "")),
            _optional_int(body.get("migrate_to_chat_id"), "migrate_to_chat_id"),
        )
        view = self.sandbox.chat_view(chat)
        if new_chat is not None:
            view["migrated_to"] = self.sandbox.chat_view(new_chat)
        return JSONResponse(view)

    # -- messages --------------------------------------------------------------------------

    async def list_messages(self, request: Request) -> Response:
        chat = self._chat(request)
        include_deleted = request.query_params.get("include_deleted") in ("1", "true")
        thread_id = _optional_int(request.query_params.get("message_thread_id"), "thread")
        views = [
            message.to_view()
            for message in chat.messages.values()
            if (include_deleted or not message.deleted)
            and (thread_id is None or message.thread_id == thread_id)
        ]
        return JSONResponse(views)

    async def get_message(self, request: Request) -> Response:
        chat = self._chat(request)
        message_id = _optional_int(request.path_params["message_id"], "message_id")
        message = chat.messages.get(message_id or 0)
        if message is None:
            raise ControlError(404, f"message {message_id} not found")
        return JSONResponse(message.to_view())

    def _document(self, body: JsonDict) -> StoredFile | None:
        """A person's document or photo (``{"document": …}`` or ``{"photo": …}``)."""
        if body.get("document") is not None and body.get("photo") is not None:
            raise ControlError(400, "a message carries a document or a photo, not both")
        kind = "photo" if body.get("photo") is not None else "document"
        document = body.get(kind)
        if document is None:
            return None
        if not isinstance(document, dict):
            raise ControlError(400, f"{kind} must be {{file_name?, mime_type?, content_base64}}")
        try:
            content = base64.b64decode(str(document.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise ControlError(400, f"{kind}.content_base64 is not base64") from None
        if kind == "photo":
            # What Telegram takes from a person's photo: an image it can read, ≤ 10 MB.
            if len(content) > MAX_PHOTO_BYTES:
                raise ControlError(400, f"a photo is at most {MAX_PHOTO_BYTES} bytes")
            stored = self.sandbox.files.add_upload("photo", content, None, None)
            if stored.width is None:
                raise ControlError(400, "photo.content_base64 is not a PNG, GIF or JPEG image")
            return stored
        if len(content) > MAX_DOCUMENT_BYTES:
            raise ControlError(400, f"a document is at most {MAX_DOCUMENT_BYTES} bytes")
        return self.sandbox.files.add_upload(
            "document",
            content or b"\n",
            str(document.get("file_name") or "file.txt"),
            document.get("mime_type"),
        )

    async def write_message(self, request: Request) -> Response:
        body = await _body(request)
        return self._write(self._chat(request), body)

    def _write(self, chat: Chat, body: JsonDict) -> Response:
        user = body.get("user")
        message, update_id = self.sandbox.person_writes(
            chat,
            text=None if body.get("text") is None else str(body["text"]),
            user_id=_optional_int(body.get("user_id"), "user_id"),
            user=user if isinstance(user, dict) else None,
            reply_to_message_id=_optional_int(
                body.get("reply_to_message_id"), "reply_to_message_id"
            ),
            message_thread_id=_optional_int(body.get("message_thread_id"), "message_thread_id"),
            document=self._document(body),
            caption=body.get("caption"),
        )
        view = message.to_view()
        view["update_id"] = update_id
        return JSONResponse(view, status_code=201)

    async def press(self, request: Request) -> Response:
        body = await _body(request)
        message_id = _optional_int(request.path_params["message_id"], "message_id")
        return self._press(self._chat(request), message_id or 0, body)

    def _press(self, chat: Chat, message_id: int, body: JsonDict) -> Response:
        user = body.get("user")
        data = body.get("callback_data", body.get("data"))
        record = self.sandbox.press_button(
            chat,
            message_id,
            user_id=_optional_int(body.get("user_id"), "user_id"),
            user=user if isinstance(user, dict) else None,
            callback_data=None if data is None else str(data),
            button_text=None if body.get("text") is None else str(body["text"]),
            forge=bool(body.get("forge", False)),
        )
        result = record.to_json()
        result["callback_query_id"] = record.id
        result["update_id"] = self.sandbox.updates.next_update_id - 1
        return JSONResponse(result, status_code=201)

    # -- observation -----------------------------------------------------------------------

    async def calls(self, request: Request) -> Response:
        query = request.query_params
        method = (query.get("method") or "").lower()
        since = float(query["since"]) if query.get("since") else None
        chat_id = query.get("chat_id")
        limit = _optional_int(query.get("limit"), "limit")
        calls = [
            call
            for call in self.sandbox.calls
            if (not method or call["method"].lower() == method)
            and (since is None or call["timestamp"] >= since)
            and (chat_id is None or str(call["chat_id"]) == chat_id)
        ]
        if limit is not None:
            calls = calls[-limit:] if limit > 0 else []
        return JSONResponse(calls)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.stats())

    async def pending_updates(self, request: Request) -> Response:
        return JSONResponse([update.to_api() for update in self.sandbox.updates.take(100_000)])

    async def callback_queries(self, request: Request) -> Response:
        return JSONResponse([query.to_json() for query in self.sandbox.callback_queries.values()])

    async def bot(self, request: Request) -> Response:
        sandbox = self.sandbox
        return JSONResponse(
            {
                "me": sandbox.get_me(),
                "commands": sandbox.commands,
                "webhook": None if sandbox.webhook is None else sandbox.webhook.info(),
                "token_required": sandbox.config.token is not None,
            }
        )

    async def file(self, request: Request) -> Response:
        stored = self.sandbox.files.get(request.path_params["file_id"])
        if stored is None:
            raise ControlError(404, "file not found")
        if stored.content is None:
            raise ControlError(404, f"file was sent by URL and not downloaded: {stored.source_url}")
        headers = {"Content-Disposition": f'inline; filename="{stored.file_name or "photo.jpg"}"'}
        media_type = stored.mime_type or (
            "image/jpeg" if stored.kind == "photo" else "application/octet-stream"
        )
        return Response(stored.content, media_type=media_type, headers=headers)

    # -- knobs -----------------------------------------------------------------------------

    async def faults(self, request: Request) -> Response:
        injector = self.sandbox.faults
        if request.method == "DELETE":
            injector.clear()
        elif request.method == "POST":
            return self._add_fault(await _body(request))
        return JSONResponse([rule.to_json() for rule in injector.rules])

    def _add_fault(self, body: JsonDict) -> Response:
        times = _optional_int(body.get("times", 1), "times") or 1
        status = _optional_int(body.get("status"), "status")
        parameters = body.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ControlError(400, "parameters must be an object")
        delay_s = float(body.get("delay_s") or 0.0)
        drop = bool(body.get("drop_connection_after_record", False))
        raw_body = body.get("raw_body")
        if status is None and raw_body is not None:
            status = 502
        if status is None and not drop and delay_s <= 0:
            raise ControlError(400, "a fault needs a status, a delay_s or a dropped connection")
        chat_id = body.get("chat_id")
        rule = self.sandbox.faults.add(
            times=times,
            method=(str(body["method"]).lower() if body.get("method") else None),
            chat_id=None if chat_id is None else str(chat_id),
            status=status,
            description=body.get("description"),
            parameters=parameters,
            delay_s=delay_s,
            raw_body=None if raw_body is None else str(raw_body),
            content_type=str(body.get("content_type") or "text/html"),
            drop_connection_after_record=drop,
        )
        return JSONResponse(rule.to_json(), status_code=201)

    async def clock(self, request: Request) -> Response:
        clock = self.sandbox.clock
        if request.method == "POST":
            body = await _body(request)
            if body.get("freeze") is True:
                clock.freeze()
            elif body.get("freeze") is False:
                clock.unfreeze()
            if body.get("set") is not None:
                clock.set(float(body["set"]))
            if body.get("advance_s"):
                clock.advance(float(body["advance_s"]))
        return JSONResponse({"now": clock.time(), "frozen": clock.frozen})

    async def flood(self, request: Request) -> Response:
        flood = self.sandbox.flood
        if request.method == "POST":
            body = await _body(request)
            if "enabled" in body:
                flood.enabled = bool(body["enabled"])
            if body.get("rate_scale") is not None:
                scale = float(body["rate_scale"])
                if scale <= 0:
                    raise ControlError(400, "rate_scale must be positive")
                flood.configure(scale)
            if body.get("global_penalty_s") is not None:
                flood.set_global_penalty(float(body["global_penalty_s"]))
            if body.get("reset"):
                flood.reset()
        return JSONResponse(flood.snapshot())

    async def revoke_token(self, request: Request) -> Response:
        token = str((await _body(request)).get("token", ""))
        if not TOKEN_PATTERN.fullmatch(token):
            raise ControlError(400, "not a well-formed bot token")
        self.sandbox.revoked_tokens.add(token)
        return JSONResponse({"revoked": token})

    async def reset(self, request: Request) -> Response:
        await self.sandbox.reset()
        return JSONResponse({"ok": True})

    async def stream(self, request: Request) -> Response:
        feed = self.sandbox.feed
        listener = feed.subscribe()

        async def events() -> AsyncIterator[str]:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + _SSE_MAX_AGE_S
            try:
                yield "retry: 1000\n\n"
                while not feed.closing and loop.time() < deadline:
                    try:
                        await asyncio.wait_for(listener.event.wait(), _SSE_KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    # Coalesce bursts (a bot sending 30 messages) into one refresh.
                    await asyncio.sleep(_SSE_COALESCE_S)
                    changes = listener.drain()
                    if changes:
                        yield f"event: change\ndata: {json.dumps(changes)}\n\n"
            finally:
                feed.unsubscribe(listener)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    # -- the spec's /_test/ spellings ------------------------------------------------------

    async def legacy_message(self, request: Request) -> Response:
        body = await _body(request)
        chat_id = _optional_int(body.get("chat_id"), "chat_id")
        if chat_id is None:
            raise ControlError(400, "chat_id is required")
        return self._write(self.sandbox.control_chat(chat_id), body)

    async def legacy_press(self, request: Request) -> Response:
        body = await _body(request)
        chat_id = _optional_int(body.get("chat_id"), "chat_id")
        message_id = _optional_int(body.get("message_id"), "message_id")
        if chat_id is None or message_id is None:
            raise ControlError(400, "chat_id and message_id are required")
        return self._press(self.sandbox.control_chat(chat_id), message_id, body)

    async def legacy_fail(self, request: Request) -> Response:
        return self._add_fault(await _body(request))

    def routes(self) -> list[Route]:
        api = "/sandbox/api"
        table: list[tuple[str, Endpoint, list[str]]] = [
            (f"{api}/chats", self.list_chats, ["GET"]),
            (f"{api}/chats", self.create_chat, ["POST"]),
            (f"{api}/chats/{{chat_id}}", self.get_chat, ["GET"]),
            (f"{api}/chats/{{chat_id}}/topics", self.create_topic, ["POST"]),
            (f"{api}/chats/{{chat_id}}/topics/{{thread_id}}/state", self.topic_state, ["POST"]),
            (f"{api}/chats/{{chat_id}}/state", self.set_state, ["POST"]),
            (f"{api}/chats/{{chat_id}}/messages", self.list_messages, ["GET"]),
            (f"{api}/chats/{{chat_id}}/messages", self.write_message, ["POST"]),
            (f"{api}/chats/{{chat_id}}/messages/{{message_id}}", self.get_message, ["GET"]),
            (f"{api}/chats/{{chat_id}}/messages/{{message_id}}/press", self.press, ["POST"]),
            (f"{api}/calls", self.calls, ["GET"]),
            (f"{api}/stats", self.stats, ["GET"]),
            (f"{api}/updates/pending", self.pending_updates, ["GET"]),
            (f"{api}/callback_queries", self.callback_queries, ["GET"]),
            (f"{api}/bot", self.bot, ["GET"]),
            (f"{api}/files/{{file_id}}", self.file, ["GET"]),
            (f"{api}/faults", self.faults, ["GET", "POST", "DELETE"]),
            (f"{api}/clock", self.clock, ["GET", "POST"]),
            (f"{api}/flood", self.flood, ["GET", "POST"]),
            (f"{api}/tokens/revoke", self.revoke_token, ["POST"]),
            (f"{api}/reset", self.reset, ["POST"]),
            ("/_test/message", self.legacy_message, ["POST"]),
            ("/_test/press", self.legacy_press, ["POST"]),
            ("/_test/fail", self.legacy_fail, ["POST"]),
            ("/_test/chats/{chat_id}/messages", self.list_messages, ["GET"]),
            ("/_test/calls", self.calls, ["GET"]),
            ("/_test/reset", self.reset, ["POST"]),
        ]
        routes = [
            Route(path, _guarded(handler), methods=methods) for path, handler, methods in table
        ]
        routes.append(Route(f"{api}/stream", self.stream, methods=["GET"]))
        return routes
