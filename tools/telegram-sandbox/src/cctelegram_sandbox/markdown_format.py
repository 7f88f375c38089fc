"""Telegram's MarkdownV2 and legacy Markdown parse modes, ported from TDLib's parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .entities import Entity, check_link, drop_nested_in_code, make_entity, sort_entities, utf16_len
from .errors import cant_parse_entities

_INTERESTING_V2 = re.compile(r"[_*\[\]()~`>#+\-=|{}.!\\\n]")
_CODE_KINDS = frozenset({"code", "pre"})
# TDLib's names for entity types, which appear in its error messages.
_TDLIB_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_CUSTOM_EMOJI_URL = re.compile(r"tg://emoji\?id=([0-9]+)")
_SPACES = frozenset(" \t\r\n\v\f\0")
MARKDOWN_V2_ESCAPE = re.compile(r"([_*\[\]()~`>#+\-=|{}.!\\])")


def escape_markdown_v2(text: str) -> str:
    r"""Escape text for MarkdownV2 (python-telegram-bot's escape_markdown(version=2))."""
    return MARKDOWN_V2_ESCAPE.sub(r"\\\1", text)


def _pre_opening(text: str, i: int) -> tuple[str, int]:
    """After a ``` fence: the optional language and where the code starts (TDLib's rules)."""
    n = len(text)
    language = ""
    language_end = i
    while language_end < n and text[language_end] not in _SPACES and text[language_end] != "`":
        language_end += 1
    if i != language_end and language_end < n and text[language_end] != "`":
        language = text[i:language_end]
        i = language_end
    # One line break right after the opening fence is not part of the code.
    if i < n and text[i] in "\r\n":
        if i + 1 < n and text[i + 1] in "\r\n" and text[i] != text[i + 1]:
            i += 2
        else:
            i += 1
    return language, i


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _reserved_error(character: str) -> Exception:
    return cant_parse_entities(
        f"Character '{character}' is reserved and must be escaped with the preceding '\\'"
    )


@dataclass
class _Open:
    kind: str
    utf16_offset: int
    source_index: int
    piece_index: int
    language: str = ""


@dataclass
class _Quote:
    utf16_offset: int
    expandable: bool


class _MarkdownV2Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pieces: list[str] = []
        self.utf16_pos = 0
        self.stack: list[_Open] = []
        self.entities: list[Entity] = []
        self.quote: _Quote | None = None

    def append(self, chunk: str) -> None:
        self.pieces.append(chunk)
        self.utf16_pos += utf16_len(chunk)

    def close_quote(self, end_utf16: int) -> None:
        assert self.quote is not None
        if end_utf16 > self.quote.utf16_offset:
            quote_type = "expandable_blockquote" if self.quote.expandable else "blockquote"
            self.entities.append(
                make_entity(
                    quote_type, self.quote.utf16_offset, end_utf16 - self.quote.utf16_offset
                )
            )
        self.quote = None

    def line_start(self, i: int) -> int:
        """Handle `>` and `**>` at the start of a line; returns where the line's text begins."""
        text = self.text
        if self.stack and self.stack[-1].kind in _CODE_KINDS:
            return i
        if text.startswith("**>", i):
            if self.quote is None:
                self.quote = _Quote(self.utf16_pos, expandable=True)
            return i + 3
        if text.startswith(">", i):
            if self.quote is None:
                self.quote = _Quote(self.utf16_pos, expandable=False)
            return i + 1
        if self.quote is not None:
            # The previous line ended the quote; its trailing newline is not part of it.
            self.close_quote(self.utf16_pos - 1 if i > 0 else self.utf16_pos)
        return i

    def parse(self) -> tuple[str, list[Entity]]:
        text = self.text
        n = len(text)
        i = self.line_start(0)
        while i < n:
            match = _INTERESTING_V2.search(text, i)
            if match is None:
                self.append(text[i:])
                break
            if match.start() > i:
                self.append(text[i : match.start()])
            i = match.start()
            character = text[i]
            if character == "\\":
                if i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                    self.append(text[i + 1])
                    i += 2
                else:
                    self.append("\\")
                    i += 1
                continue
            if character == "\n":
                self.append("\n")
                i = self.line_start(i + 1)
                continue
            top = self.stack[-1] if self.stack else None
            if top is not None and top.kind in _CODE_KINDS and character != "`":
                self.append(character)
                i += 1
                continue
            if (
                character == "|"
                and self.quote is not None
                and text.startswith("||", i)
                and (i + 2 == n or text[i + 2] == "\n")
                and (top is None or top.kind != "spoiler")
            ):
                self.quote.expandable = True
                self.close_quote(self.utf16_pos)
                i += 2
                continue
            if top is not None and self._ends(top.kind, i):
                i = self._end_entity(i)
            else:
                i = self._begin_entity(i)
        if self.stack:
            top = self.stack[-1]
            raise cant_parse_entities(
                f"Can't find end of {_TDLIB_TYPE_NAMES[top.kind]} entity at byte offset "
                f"{_byte_offset(text, top.source_index)}"
            )
        if self.quote is not None:
            self.close_quote(self.utf16_pos)
        return "".join(self.pieces), sort_entities(drop_nested_in_code(self.entities))

    def _ends(self, kind: str, i: int) -> bool:
        text = self.text
        character = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if kind == "bold":
            return character == "*"
        if kind == "italic":
            return character == "_" and following != "_"
        if kind == "code":
            return character == "`"
        if kind == "pre":
            return text.startswith("```", i)
        if kind in ("text_link", "custom_emoji"):
            return character == "]"
        if kind == "underline":
            return text.startswith("__", i)
        if kind == "strikethrough":
            return character == "~"
        return text.startswith("||", i)  # spoiler

    def _begin_entity(self, i: int) -> int:
        text = self.text
        character = text[i]
        source_index = i
        language = ""
        if character == "_":
            if text.startswith("__", i):
                kind = "underline"
                i += 1
            else:
                kind = "italic"
        elif character == "*":
            kind = "bold"
        elif character == "~":
            kind = "strikethrough"
        elif character == "|":
            if not text.startswith("||", i):
                raise _reserved_error(character)
            kind = "spoiler"
            i += 1
        elif character == "[":
            kind = "text_link"
        elif character == "`":
            if text.startswith("```", i):
                kind = "pre"
                language, i = _pre_opening(text, i + 3)
                self.stack.append(
                    _Open(kind, self.utf16_pos, source_index, len(self.pieces), language)
                )
                return i
            kind = "code"
        elif character == "!" and text.startswith("![", i):
            kind = "custom_emoji"
            i += 1
        else:
            raise _reserved_error(character)
        self.stack.append(_Open(kind, self.utf16_pos, source_index, len(self.pieces)))
        return i + 1

    def _end_entity(self, i: int) -> int:
        text = self.text
        n = len(text)
        opened = self.stack.pop()
        skip_entity = self.utf16_pos == opened.utf16_offset
        extra: dict[str, str] = {}
        kind = opened.kind
        if kind in ("underline", "spoiler"):
            i += 1
        elif kind == "pre":
            i += 2
            if opened.language:
                extra["language"] = opened.language
        elif kind == "text_link":
            if i + 1 < n and text[i + 1] == "(":
                i += 2
                url_begin = i
                url_pieces: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                        url_pieces.append(text[i + 1])
                        i += 2
                        continue
                    url_pieces.append(text[i])
                    i += 1
                if i >= n:
                    raise cant_parse_entities(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}"
                    )
                url = "".join(url_pieces)
            else:
                url = "".join(self.pieces[opened.piece_index :])
            checked = check_link(url)
            if checked is None:
                skip_entity = True
            else:
                extra["url"] = checked
        elif kind == "custom_emoji":
            if not text.startswith("(", i + 1):
                raise cant_parse_entities("Custom emoji entity must contain a tg://emoji URL")
            close = text.find(")", i + 2)
            emoji_match = _CUSTOM_EMOJI_URL.fullmatch(text, i + 2, close) if close > 0 else None
            if emoji_match is None:
                raise cant_parse_entities("Custom emoji URL must have an emoji identifier")
            extra["custom_emoji_id"] = emoji_match.group(1)
            i = close
        if not skip_entity:
            self.entities.append(
                make_entity(
                    kind, opened.utf16_offset, self.utf16_pos - opened.utf16_offset, **extra
                )
            )
        return i + 1


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    """Parse MarkdownV2; raises BotApiError 400 "can't parse entities: ..." on bad markup."""
    return _MarkdownV2Parser(text).parse()


_LEGACY_SPECIAL = re.compile(r"[_*`\[\\]")


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    """Parse legacy Markdown (parse_mode "Markdown"), as TDLib's parse_markdown does."""
    pieces: list[str] = []
    utf16_pos = 0
    entities: list[Entity] = []
    n = len(text)
    i = 0
    while i < n:
        match = _LEGACY_SPECIAL.search(text, i)
        if match is None:
            pieces.append(text[i:])
            utf16_pos += utf16_len(text[i:])
            break
        if match.start() > i:
            chunk = text[i : match.start()]
            pieces.append(chunk)
            utf16_pos += utf16_len(chunk)
        i = match.start()
        character = text[i]
        if character == "\\":
            if i + 1 < n and text[i + 1] in "_*`[":
                pieces.append(text[i + 1])
                utf16_pos += 1
                i += 2
            else:
                pieces.append("\\")
                utf16_pos += 1
                i += 1
            continue
        begin = i
        end_character = "]" if character == "[" else character
        i += 1
        is_pre = False
        language = ""
        if character == "`" and text.startswith("``", i):
            is_pre = True
            language, i = _pre_opening(text, i + 2)
        entity_offset = utf16_pos
        content_start = i
        while i < n and (text[i] != end_character or (is_pre and not text.startswith("``", i + 1))):
            i += 1
        if i >= n:
            raise cant_parse_entities(
                f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}"
            )
        content = text[content_start:i]
        pieces.append(content)
        utf16_pos += utf16_len(content)
        length = utf16_pos - entity_offset
        if length > 0:
            if character == "_":
                entities.append(make_entity("italic", entity_offset, length))
            elif character == "*":
                entities.append(make_entity("bold", entity_offset, length))
            elif character == "[":
                if text.startswith("(", i + 1):
                    url_end = text.find(")", i + 2)
                    url_end = n if url_end < 0 else url_end
                    url = text[i + 2 : url_end]
                    i = url_end
                else:
                    url = content
                checked = check_link(url)
                if checked is not None:
                    entities.append(make_entity("text_link", entity_offset, length, url=checked))
            elif is_pre:
                extra = {"language": language} if language else {}
                entities.append(make_entity("pre", entity_offset, length, **extra))
            else:
                entities.append(make_entity("code", entity_offset, length))
        if is_pre:
            i += 2
        i += 1
    return "".join(pieces), sort_entities(entities)
