"""Telegram's HTML parse mode, ported from TDLib's parse_html: text + MessageEntity list."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .entities import (
    Entity,
    check_link,
    drop_nested_in_code,
    make_entity,
    sort_entities,
    utf16_len,
)
from .errors import cant_parse_entities

_SPECIAL = re.compile(r"[<&]")
_SPACES = frozenset(" \t\r\n\v\f\0")
_SUPPORTED_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "tg-time", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_SIMPLE_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


@dataclass
class _OpenTag:
    name: str
    utf16_offset: int
    piece_index: int
    attributes: dict[str, str] = field(default_factory=dict)


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode `&...;` at pos like TDLib: the character and the next position, or None."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            digits_start = end
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
                if value >= 0x10FFFF:
                    return None
        else:
            digits_start = end
            while end < n and text[end].isascii() and text[end].isdigit():
                value = value * 10 + int(text[end])
                end += 1
                if value >= 0x10FFFF:
                    return None
        if end == digits_start or value == 0 or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
            return None
        character = chr(value)
    else:
        while end < n and text[end] in _ASCII_LETTERS:
            end += 1
        named = _NAMED_ENTITIES.get(text[pos + 1 : end])
        if named is None:
            return None
        character = named
    if end < n and text[end] == ";":
        end += 1
    return character, end


def parse_html(text: str) -> tuple[str, list[Entity]]:
    """Parse Telegram HTML; raises BotApiError 400 "can't parse entities: ..." on bad markup."""
    pieces: list[str] = []
    utf16_pos = 0
    open_tags: list[_OpenTag] = []
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        match = _SPECIAL.search(text, i)
        if match is None:
            pieces.append(text[i:])
            utf16_pos += utf16_len(text[i:])
            break
        start = match.start()
        if start > i:
            chunk = text[i:start]
            pieces.append(chunk)
            utf16_pos += utf16_len(chunk)
        i = start
        if text[i] == "&":
            decoded = decode_html_entity(text, i)
            if decoded is None:
                pieces.append("&")
                utf16_pos += 1
                i += 1
            else:
                pieces.append(decoded[0])
                utf16_pos += utf16_len(decoded[0])
                i = decoded[1]
            continue
        if i + 1 < n and text[i + 1] == "/":
            i = _close_tag(text, i, open_tags, pieces, utf16_pos, entities)
        else:
            i, tag = _open_tag(text, i)
            tag.utf16_offset = utf16_pos
            tag.piece_index = len(pieces)
            open_tags.append(tag)
    if open_tags:
        raise cant_parse_entities(
            f'Can\'t find end tag corresponding to start tag "{open_tags[-1].name}"'
        )
    for entity in entities:
        if entity["type"] == "code":
            # Only pre keeps a language; a lone <code class="language-x"> is plain code.
            entity.pop("language", None)
    return "".join(pieces), sort_entities(drop_nested_in_code(entities))


def _open_tag(text: str, begin: int) -> tuple[int, _OpenTag]:
    n = len(text)
    i = begin + 1
    while i < n and text[i] not in _SPACES and text[i] != ">":
        i += 1
    if i >= n:
        raise cant_parse_entities(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    tag_name = text[begin + 1 : i].lower()
    if tag_name not in _SUPPORTED_TAGS:
        raise cant_parse_entities(
            f'Unsupported start tag "{tag_name}" at byte offset {_byte_offset(text, begin)}'
        )
    tag = _OpenTag(tag_name, 0, 0)
    while i < n and text[i] != ">":
        while i < n and text[i] in _SPACES:
            i += 1
        if i < n and text[i] == ">":
            break
        name_start = i
        while i < n and text[i] not in _SPACES and text[i] not in "=>":
            i += 1
        attribute_name = text[name_start:i].lower()
        if not attribute_name:
            raise cant_parse_entities(
                f'Empty attribute name in the tag "{tag_name}" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        while i < n and text[i] in _SPACES:
            i += 1
        if i >= n:
            raise cant_parse_entities(
                f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            )
        if text[i] != "=":
            if tag_name == "blockquote" and attribute_name == "expandable":
                tag.attributes["expandable"] = ""
                continue
            raise cant_parse_entities(
                f'Expected equal sign in declaration of an attribute of the tag "{tag_name}" '
                f"at byte offset {_byte_offset(text, begin)}"
            )
        i += 1
        while i < n and text[i] in _SPACES:
            i += 1
        if i >= n:
            raise cant_parse_entities(
                f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            )
        if text[i] not in "'\"":
            # An unquoted value is an HTML name token; like TDLib, it is lower-cased.
            token_start = i
            while i < n and text[i] in _NAME_TOKEN_CHARS:
                i += 1
            value = text[token_start:i].lower()
            if i >= n or (text[i] not in _SPACES and text[i] != ">"):
                raise cant_parse_entities(
                    f"Unexpected end of name token at byte offset {_byte_offset(text, token_start)}"
                )
        else:
            quote = text[i]
            i += 1
            value_pieces: list[str] = []
            while i < n and text[i] != quote:
                if text[i] == "&":
                    decoded = decode_html_entity(text, i)
                    if decoded is not None:
                        value_pieces.append(decoded[0])
                        i = decoded[1]
                        continue
                value_pieces.append(text[i])
                i += 1
            if i < n:
                i += 1
            value = "".join(value_pieces)
        if i >= n:
            raise cant_parse_entities(
                f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
            )
        tag.attributes[attribute_name] = value
    if i >= n:
        raise cant_parse_entities(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    if tag_name == "span" and tag.attributes.get("class") != "tg-spoiler":
        raise cant_parse_entities(
            f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
        )
    return i + 1, tag


def _close_tag(
    text: str,
    begin: int,
    open_tags: list[_OpenTag],
    pieces: list[str],
    utf16_pos: int,
    entities: list[Entity],
) -> int:
    if not open_tags:
        raise cant_parse_entities(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    n = len(text)
    i = begin + 2
    name_start = i
    while i < n and text[i] != ">":
        i += 1
    if i >= n:
        raise cant_parse_entities(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    end_tag_name = text[name_start:i].strip().lower()
    tag = open_tags[-1]
    if end_tag_name and end_tag_name != tag.name:
        raise cant_parse_entities(
            f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
            f'expected "</{tag.name}>", found "</{end_tag_name}>"'
        )
    open_tags.pop()
    length = utf16_pos - tag.utf16_offset
    if length > 0:
        entity = _tag_entity(tag, length, pieces, entities)
        if entity is not None:
            entities.append(entity)
    return i + 1


def _tag_entity(
    tag: _OpenTag, length: int, pieces: list[str], entities: list[Entity]
) -> Entity | None:
    offset = tag.utf16_offset
    simple_type = _SIMPLE_TAG_TYPES.get(tag.name)
    if simple_type is not None:
        return make_entity(simple_type, offset, length)
    if tag.name == "a":
        href = tag.attributes.get("href") or "".join(pieces[tag.piece_index :])
        url = check_link(href)
        return None if url is None else make_entity("text_link", offset, length, url=url)
    if tag.name == "code":
        language = tag.attributes.get("class", "")
        if language.startswith("language-") and len(language) > len("language-"):
            return make_entity("code", offset, length, language=language[len("language-") :])
        return make_entity("code", offset, length)
    if tag.name == "pre":
        inner = entities[-1] if entities else None
        if (
            inner is not None
            and inner["type"] == "code"
            and inner["offset"] == offset
            and inner["length"] == length
        ):
            entities.pop()
            if "language" in inner:
                return make_entity("pre", offset, length, language=inner["language"])
        return make_entity("pre", offset, length)
    if tag.name == "blockquote":
        quote_type = "expandable_blockquote" if "expandable" in tag.attributes else "blockquote"
        return make_entity(quote_type, offset, length)
    if tag.name == "tg-emoji":
        emoji_id = tag.attributes.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise cant_parse_entities(
                "Custom emoji entity must contain a valid custom emoji identifier"
            )
        return make_entity("custom_emoji", offset, length, custom_emoji_id=emoji_id)
    # tg-time
    unix = tag.attributes.get("unix", "")
    if not unix.isdigit():
        return None
    extra = {"unix_time": int(unix)}
    if tag.attributes.get("format"):
        return make_entity(
            "date_time", offset, length, **extra, date_time_format=tag.attributes["format"]
        )
    return make_entity("date_time", offset, length, **extra)
