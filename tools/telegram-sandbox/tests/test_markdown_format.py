"""MarkdownV2 and legacy Markdown: entities, reserved characters and TDLib's error texts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cctelegram_sandbox.errors import BotApiError
from cctelegram_sandbox.markdown_format import (
    escape_markdown_v2,
    parse_markdown,
    parse_markdown_v2,
)


def test_markdown_v2_entities() -> None:
    text, entities = parse_markdown_v2(
        "*bold _both_* __under__ ~strike~ ||spoiler|| `code` [link](https://e.com/a\\)b)"
    )
    assert text == "bold both under strike spoiler code link"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 9},
        {"type": "italic", "offset": 5, "length": 4},
        {"type": "underline", "offset": 10, "length": 5},
        {"type": "strikethrough", "offset": 16, "length": 6},
        {"type": "spoiler", "offset": 23, "length": 7},
        {"type": "code", "offset": 31, "length": 4},
        {"type": "text_link", "offset": 36, "length": 4, "url": "https://e.com/a)b"},
    ]


def test_pre_with_language_and_verbatim_content() -> None:
    text, entities = parse_markdown_v2("```python\nprint(*args)\n```")
    assert text == "print(*args)\n"
    assert entities == [{"type": "pre", "offset": 0, "length": 13, "language": "python"}]


def test_blockquotes() -> None:
    assert parse_markdown_v2(">one\n>two\nafter") == (
        "one\ntwo\nafter",
        [{"type": "blockquote", "offset": 0, "length": 7}],
    )
    assert parse_markdown_v2("**>hidden\n>more||") == (
        "hidden\nmore",
        [{"type": "expandable_blockquote", "offset": 0, "length": 11}],
    )


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("Done.", "Character '.' is reserved and must be escaped with the preceding '\\'"),
        ("a-b", "Character '-' is reserved and must be escaped with the preceding '\\'"),
        ("x > y", "Character '>' is reserved and must be escaped with the preceding '\\'"),
        ("*open", "Can't find end of Bold entity at byte offset 0"),
        ("é _open", "Can't find end of Italic entity at byte offset 3"),
        ("[a](https://x", "Can't find end of a URL at byte offset 4"),
    ],
)
def test_markdown_v2_errors(source: str, detail: str) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_markdown_v2(source)
    assert caught.value.description == f"Bad Request: can't parse entities: {detail}"


@given(st.text())
def test_escaped_markdown_v2_parses_to_itself(text: str) -> None:
    parsed, entities = parse_markdown_v2(escape_markdown_v2(text))
    assert parsed == text
    assert entities == []


@given(st.text(), st.text(min_size=1))
def test_bold_around_escaped_text_counts_utf16_units(before: str, inside: str) -> None:
    parsed, entities = parse_markdown_v2(
        f"{escape_markdown_v2(before)}*{escape_markdown_v2(inside)}*"
    )
    assert parsed == before + inside
    assert entities == [
        {
            "type": "bold",
            "offset": len(before.encode("utf-16-le")) // 2,
            "length": len(inside.encode("utf-16-le")) // 2,
        }
    ]


def test_legacy_markdown() -> None:
    text, entities = parse_markdown("*b* _i_ `c` [l](http://x.y) a.b-c")
    assert text == "b i c l a.b-c"
    assert [entity["type"] for entity in entities] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(BotApiError, match="Can't find end of the entity starting at byte offset 0"):
        parse_markdown("*open")
