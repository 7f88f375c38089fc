"""MessageEntity helpers shared by the parsers: UTF-16 lengths, URL checks, clean-up."""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

# Entities Telegram will not nest inside code or pre; anything inside those is dropped.
_CODE_LIKE = frozenset({"code", "pre"})
_ALLOWED_URL_SCHEMES = ("http://", "https://", "tg://", "ton://", "tonsite://", "mailto:")
_BARE_HOST = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+(?:[/?#:].*)?"
)
_URL_FORBIDDEN = re.compile(r"[\s<>\"]")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's offsets and limits."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) >> 1


def make_entity(entity_type: str, offset: int, length: int, **extra: Any) -> Entity:
    entity: Entity = {"type": entity_type, "offset": offset, "length": length}
    entity.update(extra)
    return entity


def check_link(url: str) -> str | None:
    """The URL Telegram would keep for a text link, or None when it would drop the entity."""
    url = url.strip()
    if not url or _URL_FORBIDDEN.search(url):
        return None
    lowered = url.lower()
    if lowered.startswith(_ALLOWED_URL_SCHEMES):
        return url
    if "://" in url or lowered.startswith(("javascript:", "data:", "file:")):
        return None
    if _BARE_HOST.fullmatch(url):
        return "http://" + url
    return None


def sort_entities(entities: list[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda entity: (entity["offset"], -entity["length"]))


def drop_nested_in_code(entities: list[Entity]) -> list[Entity]:
    """Remove entities inside code/pre (Telegram shows code verbatim)."""
    code_spans = [
        (entity["offset"], entity["offset"] + entity["length"])
        for entity in entities
        if entity["type"] in _CODE_LIKE
    ]
    if not code_spans:
        return entities
    kept = []
    for entity in entities:
        start, end = entity["offset"], entity["offset"] + entity["length"]
        strictly_inside = any(
            span_start <= start and end <= span_end and (start, end) != (span_start, span_end)
            for span_start, span_end in code_spans
        )
        if not strictly_inside:
            kept.append(entity)
    return kept


_WHITESPACE = " \t\r\n\v\f\u00a0"


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Trim leading and trailing whitespace the way Telegram does, shrinking entities."""
    stripped = text.strip(_WHITESPACE)
    if stripped == text:
        return text, entities
    if not stripped:
        return "", []
    leading = utf16_len(text[: len(text) - len(text.lstrip(_WHITESPACE))])
    new_length = utf16_len(stripped)
    adjusted = []
    for entity in entities:
        start = max(entity["offset"] - leading, 0)
        end = min(entity["offset"] + entity["length"] - leading, new_length)
        if end > start:
            adjusted.append({**entity, "offset": start, "length": end - start})
    return stripped, adjusted


# Entities Telegram detects on its own in messages people write.
_AUTO_ENTITY_PATTERNS = (
    ("bot_command", re.compile(r"(?<![^\s(])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z][A-Za-z0-9_]{2,31})?")),
    ("mention", re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}\b")),
    ("hashtag", re.compile(r"(?<![\w#&])#[^\W\d]\w*")),
    ("url", re.compile(r"\bhttps?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
)


def detect_entities(text: str) -> list[Entity]:
    """bot_command, mention, hashtag and url entities, as Telegram adds to incoming messages."""
    found: list[Entity] = []
    ascii_only = text.isascii()
    taken: list[tuple[int, int]] = []
    for entity_type, pattern in _AUTO_ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < other_end and other_start < end for other_start, other_end in taken):
                continue
            taken.append((start, end))
            offset = start if ascii_only else utf16_len(text[:start])
            length = end - start if ascii_only else utf16_len(match.group())
            found.append(make_entity(entity_type, offset, length))
    return sort_entities(found)
