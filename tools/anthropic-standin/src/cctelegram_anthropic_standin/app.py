"""The HTTP side: a Starlette app that answers like the Anthropic Messages API, from scripts.

Routes: `POST /v1/messages` (streamed SSE when the body says `"stream": true`, a plain JSON
message otherwise; any query such as `?beta=true` is accepted), `POST /v1/messages/count_tokens`,
`GET /v1/models`, and a small control API under `/standin/` (add a script, read the recorded
requests) for a stand-in running in another process. Anything else: 404 in the API's error shape.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .scripts import (
    NAME_PATTERN,
    Block,
    Reply,
    Text,
    ToolResult,
    ToolUse,
    Turn,
    build_reply,
    count_assistant_messages,
    find_script_name,
    normalize_turn,
    offers_tools,
    session_of,
    text_reply,
    tool_results_of,
    user_texts,
)

SIDE_REQUEST_TEXT = "OK."
_SECRET_HEADERS = {"x-api-key", "authorization", "proxy-authorization", "cookie"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stand-in received (secret headers replaced by `[redacted]`).

    `script`/`turn`: the script and turn that answered it (None for side requests and other
    routes). `session_id`: Claude Code's session (header `x-claude-code-session-id`).
    `side`: a request without tools that carried a marker (e.g. a title or summary request
    quoting the prompt); answered with a short text, not counted as a script turn.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: Any
    script: str | None
    turn: int | None
    received_at: float
    session_id: str | None = None
    side: bool = False

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("messages"), list):
            return list(self.body["messages"])
        return []

    @property
    def user_texts(self) -> list[str]:
        """Every text block of the user messages (prompt, system reminders, hook feedback such
        as a Stop hook's block reason), tool results excluded."""
        return user_texts(self.body) if isinstance(self.body, dict) else []

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools the request offered the model."""
        if not isinstance(self.body, dict) or not isinstance(self.body.get("tools"), list):
            return []
        return [str(t.get("name")) for t in self.body["tools"] if isinstance(t, dict)]


class StandinState:
    """Scripts and the request log; shared between the server thread and the test's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, tuple[tuple[Block, ...], ...]] = {}
        self._requests: list[RecordedRequest] = []

    def add_script(self, name: str, turns: Sequence[Turn]) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise ValueError(f"script name {name!r} must match {NAME_PATTERN.pattern}")
        if isinstance(turns, str | Text | ToolUse):
            raise TypeError("turns is a list of turns; wrap a single turn in a list")
        normalized = tuple(normalize_turn(turn) for turn in turns)
        with self._lock:
            self._scripts[name] = normalized

    def script_names(self) -> list[str]:
        with self._lock:
            return list(self._scripts)

    def reply_for(
        self, body: Mapping[str, Any], session: str | None = None
    ) -> tuple[str | None, int | None, Reply]:
        """(script, turn, reply); turn None: a side request (no marker, or no tools)."""
        name = find_script_name(body)
        if name is None:
            return None, None, text_reply(SIDE_REQUEST_TEXT)
        if not offers_tools(body):
            return name, None, text_reply(SIDE_REQUEST_TEXT)
        turn = count_assistant_messages(body)
        with self._lock:
            script = self._scripts.get(name)
        if script is None:
            return name, turn, text_reply(f"[stand-in] no script named {name!r} is registered.")
        if turn >= len(script):
            return name, turn, text_reply(f"[stand-in] script {name!r} has no turn {turn}.")
        return (
            name,
            turn,
            build_reply(name, turn, script[turn], session, previous=tool_results_of(body)),
        )

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def all_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests(self, script: str, session_id: str | None = None) -> list[RecordedRequest]:
        """The conversation requests (side requests excluded) of `script`, optionally of one
        session only."""
        return [
            r
            for r in self.all_requests()
            if r.script == script
            and not r.side
            and (session_id is None or r.session_id == session_id)
        ]

    def sessions(self, script: str) -> list[str]:
        """The session ids that ran `script`, in order of their first request."""
        found: list[str] = []
        for request in self.requests(script):
            if request.session_id and request.session_id not in found:
                found.append(request.session_id)
        return found

    def tool_results(self, script: str, session_id: str | None = None) -> list[ToolResult]:
        """Every distinct tool_result the model received in the conversation(s) of `script`."""
        seen: set[str] = set()
        results: list[ToolResult] = []
        for request in self.requests(script, session_id):
            if not isinstance(request.body, dict):
                continue
            for result in tool_results_of(request.body):
                if result.tool_use_id not in seen:
                    seen.add(result.tool_use_id)
                    results.append(result)
        return results


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status_code=status
    )


def _redacted_headers(request: Request) -> dict[str, str]:
    return {
        key: ("[redacted]" if key.lower() in _SECRET_HEADERS else value)
        for key, value in request.headers.items()
    }


def _estimate_tokens(body: Mapping[str, Any]) -> int:
    return max(1, len(json.dumps(body.get("messages", []))) // 4)


def _message(model: str, reply: Reply, input_tokens: int) -> dict[str, Any]:
    return {
        "id": f"msg_standin_{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(reply.blocks),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _halves(text: str) -> list[str]:
    if len(text) < 2:
        return [text]
    middle = len(text) // 2
    return [text[:middle], text[middle:]]


async def sse_events(model: str, reply: Reply, input_tokens: int) -> AsyncIterator[bytes]:
    """The event sequence the real API streams for one assistant message."""
    start = _message(model, reply, input_tokens)
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {**start["usage"], "output_tokens": 1}
    yield _sse("message_start", {"type": "message_start", "message": start})
    yield _sse("ping", {"type": "ping"})
    for index, block in enumerate(reply.blocks):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _halves(block["text"]):
                yield _sse(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
            for piece in _halves(json.dumps(block["input"])):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


def create_app(state: StandinState) -> Starlette:
    async def read_json(request: Request) -> tuple[Any, JSONResponse | None]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return raw.decode(errors="replace"), _error(
                400, "invalid_request_error", "body is not JSON"
            )
        return body, None

    def record(
        request: Request,
        body: Any,
        script: str | None,
        turn: int | None,
        session: str | None = None,
    ) -> None:
        state.record(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                headers=_redacted_headers(request),
                body=body,
                script=script,
                turn=turn,
                received_at=time.time(),
                session_id=session,
                side=script is not None and turn is None,
            )
        )

    async def messages(request: Request) -> Response:
        body, problem = await read_json(request)
        if problem is None and not isinstance(body, dict):
            problem = _error(400, "invalid_request_error", "body must be a JSON object")
        if problem is not None or not isinstance(body, dict):
            record(request, body, None, None)
            return problem or _error(400, "invalid_request_error", "bad body")
        if not isinstance(body.get("messages"), list):
            record(request, body, None, None)
            return _error(400, "invalid_request_error", "messages: Field required (a list)")
        session = session_of(request.headers, body)
        script, turn, reply = state.reply_for(body, session)
        record(request, body, script, turn, session)
        model = str(body.get("model") or "claude-standin")
        tokens = _estimate_tokens(body)
        if body.get("stream"):
            return StreamingResponse(
                sse_events(model, reply, tokens),
                media_type="text/event-stream",
                headers={
                    "Cache-Control": "no-cache",
                    "request-id": f"req_standin_{uuid.uuid4().hex[:16]}",
                },
            )
        return JSONResponse(_message(model, reply, tokens))

    async def count_tokens(request: Request) -> Response:
        body, problem = await read_json(request)
        record(request, body, None, None)
        if problem is not None:
            return problem
        return JSONResponse(
            {"input_tokens": _estimate_tokens(body if isinstance(body, dict) else {})}
        )

    async def models(request: Request) -> Response:
        record(request, None, None, None)
        return JSONResponse({"data": [], "has_more": False, "first_id": None, "last_id": None})

    async def control_add_script(request: Request) -> Response:
        body, problem = await read_json(request)
        if problem is not None:
            return problem
        try:
            name, turns = parse_script_json(body)
            state.add_script(name, turns)
        except (TypeError, ValueError) as exc:
            return _error(422, "invalid_request_error", str(exc))
        return JSONResponse({"name": name, "turns": len(turns)}, status_code=201)

    async def control_requests(request: Request) -> Response:
        script = request.query_params.get("script")
        recorded = state.all_requests() if script is None else state.requests(script)
        return JSONResponse(
            [
                {
                    "method": r.method,
                    "path": r.path,
                    "query": r.query,
                    "headers": dict(r.headers),
                    "body": r.body,
                    "script": r.script,
                    "turn": r.turn,
                    "received_at": r.received_at,
                    "session_id": r.session_id,
                    "side": r.side,
                }
                for r in recorded
            ]
        )

    async def not_found(request: Request) -> Response:
        body = await request.body()
        record(request, body.decode(errors="replace") if body else None, None, None)
        return _error(
            404, "not_found_error", f"the stand-in has no route {request.method} {request.url.path}"
        )

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/standin/scripts", control_add_script, methods=["POST"]),
        Route("/standin/requests", control_requests, methods=["GET"]),
    ]
    # Last: every other path, and a known path with the wrong method, gets the API's 404 shape
    # (a full match here wins over the partial, method-only match of the routes above).
    routes.append(
        Route(
            "/{path:path}",
            not_found,
            methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        )
    )
    app = Starlette(routes=routes)
    return app


def parse_script_json(body: Any) -> tuple[str, list[Turn]]:
    """`{"name": ..., "turns": [...]}` where a turn is a string (text), `{"text": ...}`,
    `{"tool_use": {"name": ..., "input": {...}}}` or a list of those."""
    if not isinstance(body, dict):
        raise TypeError("body must be an object {name, turns}")
    name = body.get("name")
    turns = body.get("turns")
    if not isinstance(name, str):
        raise TypeError("name: a string is required")
    if not isinstance(turns, list):
        raise TypeError("turns: a list is required")
    return name, [_turn_from_json(t) for t in turns]


def _turn_from_json(item: Any) -> Turn:
    if isinstance(item, list):
        return [_block_from_json(b) for b in item]
    return _block_from_json(item)


def _block_from_json(item: Any) -> Text | ToolUse:
    if isinstance(item, str):
        return Text(item)
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        return Text(item["text"])
    if isinstance(item, dict) and isinstance(item.get("tool_use"), dict):
        call = item["tool_use"]
        name = call.get("name")
        arguments = call.get("input", {})
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError("tool_use needs name (string) and input (object)")
        ident = call.get("id")
        return ToolUse(name, arguments, ident if isinstance(ident, str) else None)
    raise TypeError(f"a turn is a string, {{text}}, {{tool_use}} or a list of those, not {item!r}")
