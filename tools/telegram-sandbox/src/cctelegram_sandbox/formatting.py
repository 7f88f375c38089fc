"""Turns a request's text + parse_mode (or entities) into what Telegram stores, with limits."""

from __future__ import annotations

from typing import Any

from .entities import Entity, sort_entities, strip_text, utf16_len
from .errors import UNSUPPORTED_PARSE_MODE, bad_request
from .html_format import parse_html
from .markdown_format import parse_markdown, parse_markdown_v2

MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
MAX_ENTITIES = 100
MAX_RAW_TEXT_BYTES = 32 * 1024
_ENTITY_TYPES = frozenset(
    {
        "mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bold",
        "italic", "underline", "strikethrough", "spoiler", "blockquote", "expandable_blockquote",
        "code", "pre", "text_link", "text_mention", "custom_emoji", "date_time",
    }
)  # fmt: skip


def _explicit_entities(text: str, raw: Any) -> list[Entity]:
    """Validate an `entities` parameter the way the Bot API reads it."""
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list):
        raise bad_request("can't parse entities JSON object")
    text_length = utf16_len(text)
    entities: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse MessageEntity: MessageEntity must be an Object")
        entity_type, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if not isinstance(entity_type, str) or not isinstance(offset, int):
            raise bad_request('can\'t parse MessageEntity: Field "type" must be of type String')
        if not isinstance(length, int) or offset < 0 or length <= 0:
            continue
        if entity_type not in _ENTITY_TYPES:
            raise bad_request(f'unsupported entity type "{entity_type}"')
        end = min(offset + length, text_length)
        if end > offset:
            entities.append({**item, "offset": offset, "length": end - offset})
    return sort_entities(entities)


def format_text(
    raw_text: str,
    parse_mode: str | None,
    explicit_entities: Any = None,
    *,
    max_utf16: int = MAX_TEXT_UTF16,
    too_long: str = "message is too long",
) -> tuple[str, list[Entity]]:
    """(text, entities) as Telegram stores them; raises BotApiError on bad markup or length."""
    if len(raw_text) > MAX_RAW_TEXT_BYTES and len(raw_text.encode()) > MAX_RAW_TEXT_BYTES:
        raise bad_request(too_long)
    mode = (parse_mode or "").lower()
    if mode == "":
        text, entities = raw_text, _explicit_entities(raw_text, explicit_entities)
    elif mode == "html":
        text, entities = parse_html(raw_text)
    elif mode == "markdownv2":
        text, entities = parse_markdown_v2(raw_text)
    elif mode == "markdown":
        text, entities = parse_markdown(raw_text)
    else:
        raise bad_request(UNSUPPORTED_PARSE_MODE)
    text, entities = strip_text(text, entities)
    if utf16_len(text) > max_utf16:
        raise bad_request(too_long)
    # Telegram silently ignores entities beyond the hundredth.
    return text, entities[:MAX_ENTITIES]
