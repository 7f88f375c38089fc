"""Scripts: what the stand-in model says, turn by turn, and how a request finds its script.

A conversation names its script with a marker in a user message (`[[script:NAME]]`, usually at
the start of the prompt). The turn to answer is the number of assistant messages already in the
request's `messages`: the API is stateless, so the answer depends only on the request, which
makes it robust to retries and to several `claude` processes sharing one stand-in.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MARKER_PATTERN = re.compile(r"\[\[script:([A-Za-z0-9_.:-]{1,100})\]\]")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def marker(name: str) -> str:
    """The marker a prompt carries to select the script `name`: `[[script:NAME]]`."""
    return f"[[script:{name}]]"


@dataclass(frozen=True)
class Text:
    """A text block of an assistant turn."""

    text: str


@dataclass(frozen=True)
class ToolUse:
    """A `tool_use` block: the model calls `name` with `input` (the id is derived if omitted)."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


Block = Text | ToolUse
# A turn is a text (str or Text), one tool call, or several blocks (e.g. a text then a tool call).
Turn = str | Text | ToolUse | Sequence[Text | ToolUse | str]


@dataclass(frozen=True)
class Reply:
    """One assistant message as the stand-in will send it."""

    blocks: tuple[dict[str, Any], ...]
    stop_reason: str


def normalize_turn(turn: Turn) -> tuple[Block, ...]:
    if isinstance(turn, str):
        return (Text(turn),)
    if isinstance(turn, Text | ToolUse):
        return (turn,)
    blocks: list[Block] = []
    for item in turn:
        if isinstance(item, str):
            blocks.append(Text(item))
        elif isinstance(item, Text | ToolUse):
            blocks.append(item)
        else:
            raise TypeError(f"a turn holds str, Text or ToolUse, not {type(item).__name__}")
    if not blocks:
        raise ValueError("a turn needs at least one block")
    return tuple(blocks)


def tool_use_id(script: str, turn: int, index: int, session: str = "") -> str:
    """Deterministic per conversation (a retried request gets the same id), distinct across
    the sessions that run the same script."""
    seed = f"{script}\0{turn}\0{index}\0{session}"
    return f"toolu_{hashlib.sha256(seed.encode()).hexdigest()[:24]}"


def session_of(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """Claude Code's session id: header `x-claude-code-session-id`, else `metadata.user_id`
    (a JSON string holding `session_id`)."""
    for key, value in headers.items():
        if key.lower() == "x-claude-code-session-id" and value:
            return value
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if isinstance(user_id, str):
        try:
            parsed = json.loads(user_id)
        except ValueError:
            return None
        session = parsed.get("session_id") if isinstance(parsed, dict) else None
        return session if isinstance(session, str) and session else None
    return None


def offers_tools(body: Mapping[str, Any]) -> bool:
    """Claude Code's conversation requests offer tools; its side requests (titles, summaries,
    quota probes, classifiers) offer none."""
    tools = body.get("tools")
    return isinstance(tools, list) and len(tools) > 0


RESULT_FIELD = re.compile(r"^\{\{result:([A-Za-z0-9_]+)\}\}$")


def _fill(value: Any, previous: Sequence[ToolResult]) -> Any:
    """``"{{result:FIELD}}"`` → FIELD of the last tool result's JSON (a script can pass an id
    the previous tool returned, e.g. an approval id to wait for)."""
    if isinstance(value, dict):
        return {key: _fill(item, previous) for key, item in value.items()}
    match = RESULT_FIELD.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    for result in reversed(previous):
        try:
            parsed = json.loads(result.text)
        except ValueError:
            continue
        if isinstance(parsed, dict) and match.group(1) in parsed:
            return parsed[match.group(1)]
    return value


def build_reply(
    script: str,
    turn_index: int,
    blocks: Sequence[Block],
    session: str | None = None,
    previous: Sequence[ToolResult] = (),
) -> Reply:
    rendered: list[dict[str, Any]] = []
    calls = False
    for index, block in enumerate(blocks):
        if isinstance(block, Text):
            rendered.append({"type": "text", "text": block.text})
        else:
            calls = True
            rendered.append(
                {
                    "type": "tool_use",
                    "id": block.id or tool_use_id(script, turn_index, index, session or ""),
                    "name": block.name,
                    "input": _fill(dict(block.input), previous),
                }
            )
    return Reply(tuple(rendered), "tool_use" if calls else "end_turn")


def text_reply(text: str) -> Reply:
    return Reply(({"type": "text", "text": text},), "end_turn")


def user_texts(body: Mapping[str, Any]) -> list[str]:
    """Every text a user message of the request carries (tool results excluded)."""
    texts: list[str] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return texts
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                block["text"]
                for block in content
                if isinstance(block, dict)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            )
    return texts


def find_script_name(body: Mapping[str, Any]) -> str | None:
    """The script a request belongs to: the first marker in its user messages' texts."""
    for text in user_texts(body):
        found = MARKER_PATTERN.search(text)
        if found:
            return found.group(1)
    return None


def count_assistant_messages(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


@dataclass(frozen=True)
class ToolResult:
    """A `tool_result` block the CLI sent back to the model (its content flattened to text)."""

    tool_use_id: str
    text: str
    is_error: bool
    raw: Mapping[str, Any]


def tool_results_of(body: Mapping[str, Any]) -> list[ToolResult]:
    """The tool_result blocks in a request's user messages, in order."""
    found: list[ToolResult] = []
    messages = body.get("messages")
    if not isinstance(messages, list):
        return found
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        found.extend(
            ToolResult(
                tool_use_id=str(block.get("tool_use_id", "")),
                text=_flatten(block.get("content")),
                is_error=bool(block.get("is_error", False)),
                raw=block,
            )
            for block in content
            if isinstance(block, dict) and block.get("type") == "tool_result"
        )
    return found


def _flatten(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                parts.append(item["text"])
            else:
                parts.append(json.dumps(item, sort_keys=True))
        return "\n".join(parts)
    return json.dumps(content, sort_keys=True)
