"""Telegram HTML helpers: escaping (after redaction), UTF-16 length, and safe splitting."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from cctelegram_common.redaction import redact

MAX_MESSAGE_UTF16 = 4096
# Telegram allows 100 entities per message; keep a margin for auto-detected ones.
MAX_ENTITIES = 90

_TOKEN = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>|&(?:#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[^<&]+"
)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: characters outside the BMP take two units."""
    return len(text) + sum(1 for character in text if ord(character) > 0xFFFF)


def safe(value: object) -> str:
    """Any value, redacted and then escaped for Telegram HTML text."""
    return html.escape(redact(str(value)), quote=False)


def safe_attr(value: str) -> str:
    """A redacted value for an attribute (``href``): quotes escaped too."""
    return html.escape(redact(value), quote=True)


def plain(text: str) -> str:
    """HTML back to the visible text (for digests, logs and response previews)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


@dataclass
class _Open:
    name: str
    opening: str


def _take_prefix(text: str, budget: int) -> int:
    """How many characters of ``text`` fit in ``budget`` UTF-16 units, preferring a newline
    (or a space) near the end so words and lines stay whole."""
    used = 0
    cut = 0
    for index, character in enumerate(text):
        width = 2 if ord(character) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        cut = index + 1
    if cut == len(text) or cut == 0:
        return cut
    for separator in ("\n", " "):
        position = text.rfind(separator, 0, cut)
        if position >= cut // 2:
            return position + 1
    return cut


def split_html(
    text: str, limit: int = MAX_MESSAGE_UTF16, max_entities: int = MAX_ENTITIES
) -> list[str]:
    """Cut well-formed Telegram HTML into parts of at most ``limit`` UTF-16 units each.

    Tags and entities are never cut; tags open at a cut are closed at the end of the part
    and reopened at the start of the next, so every part is valid HTML on its own.
    """
    if utf16_len(text) <= limit and text.count("<") // 2 <= max_entities:
        return [text]
    parts: list[str] = []
    stack: list[_Open] = []
    current: list[str] = []
    used = 0
    entities = 0
    has_text = False

    def closing_cost() -> int:
        return sum(len(f"</{tag.name}>") for tag in stack)

    def flush() -> None:
        nonlocal current, used, entities, has_text
        if has_text:
            parts.append("".join(current) + "".join(f"</{tag.name}>" for tag in reversed(stack)))
        current = [tag.opening for tag in stack]
        used = sum(utf16_len(tag.opening) for tag in stack)
        entities = len(stack)
        has_text = False

    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if match.group(2) is not None:  # a tag
            name = match.group(2).lower()
            if match.group(1):  # closing
                cost = utf16_len(token)
                if stack and stack[-1].name == name:
                    current.append(token)
                    used += cost
                    stack.pop()
                continue
            cost = utf16_len(token) + len(f"</{name}>")
            if used + cost + closing_cost() > limit or entities + 1 > max_entities:
                flush()
            current.append(token)
            used += utf16_len(token)
            entities += 1
            stack.append(_Open(name, token))
            continue
        if token.startswith("&"):  # an entity: atomic
            if used + utf16_len(token) + closing_cost() > limit:
                flush()
            current.append(token)
            used += utf16_len(token)
            has_text = True
            continue
        remaining = token
        while remaining:
            budget = limit - used - closing_cost()
            cut = _take_prefix(remaining, budget) if budget > 0 else 0
            if cut == 0:
                if not has_text:
                    # Even an empty part cannot hold one character: the open tags are too
                    # long. Drop them rather than loop forever (never happens with templates).
                    stack.clear()
                flush()
                continue
            piece, remaining = remaining[:cut], remaining[cut:]
            current.append(piece)
            used += utf16_len(piece)
            has_text = has_text or bool(piece.strip())
            if remaining:
                flush()
    if has_text:
        parts.append("".join(current) + "".join(f"</{tag.name}>" for tag in reversed(stack)))
    return parts or [text[:limit]]
