"""Telegram's HTML parse mode: entities, UTF-16 offsets and "can't parse entities" errors."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cctelegram_sandbox.errors import BotApiError
from cctelegram_sandbox.html_format import parse_html


def test_nested_tags_become_entities_with_utf16_offsets() -> None:
    text, entities = parse_html("😀 <b>bold <i>both</i></b> <u>u</u><s>s</s>")
    assert text == "😀 bold both us"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 9},
        {"type": "italic", "offset": 8, "length": 4},
        {"type": "underline", "offset": 13, "length": 1},
        {"type": "strikethrough", "offset": 14, "length": 1},
    ]


def test_every_supported_tag() -> None:
    source = (
        "<strong>a</strong><em>b</em><ins>c</ins><del>d</del><strike>e</strike>"
        '<tg-spoiler>f</tg-spoiler><span class="tg-spoiler">g</span><code>h</code>'
        '<pre>i</pre><pre><code class="language-python">j</code></pre>'
        '<a href="https://example.com/?a=1&amp;b=2">k</a><blockquote>l</blockquote>'
        "<blockquote expandable>m</blockquote>"
    )
    text, entities = parse_html(source)
    assert text == "abcdefghijklm"
    assert [entity["type"] for entity in entities] == [
        "bold", "italic", "underline", "strikethrough", "strikethrough", "spoiler", "spoiler",
        "code", "pre", "pre", "text_link", "blockquote", "expandable_blockquote",
    ]  # fmt: skip
    assert entities[9]["language"] == "python"
    assert "language" not in entities[8]
    assert entities[10]["url"] == "https://example.com/?a=1&b=2"


def test_named_and_numeric_entities_are_decoded() -> None:
    assert parse_html("&lt;a&gt; &amp; &quot; &#65;&#x42; &unknown; a&b")[0] == (
        '<a> & " AB &unknown; a&b'
    )


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("é<b>x</i>", 'Unmatched end tag at byte offset 6, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="x">a</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        (
            "<a href>x</a>",
            'Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0',
        ),
    ],
)  # fmt: skip
def test_bad_markup_is_refused_like_telegram(source: str, detail: str) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_html(source)
    assert caught.value.error_code == 400
    assert caught.value.description == f"Bad Request: can't parse entities: {detail}"


def test_a_link_without_a_valid_url_keeps_the_text_only() -> None:
    assert parse_html('<a href="javascript:alert(1)">x</a>') == ("x", [])


def test_empty_tags_make_no_entity() -> None:
    assert parse_html("<b></b>x") == ("x", [])


@given(st.text())
def test_escaped_text_parses_to_itself(text: str) -> None:
    parsed, entities = parse_html(html.escape(text, quote=False))
    assert parsed == text
    assert entities == []


@given(st.text(), st.text(min_size=1), st.sampled_from(["b", "i", "u", "s", "code", "tg-spoiler"]))
def test_one_tag_around_escaped_text_covers_it_in_utf16_units(
    before: str, inside: str, tag: str
) -> None:
    source = f"{html.escape(before, quote=False)}<{tag}>{html.escape(inside, quote=False)}</{tag}>"
    parsed, entities = parse_html(source)
    assert parsed == before + inside
    assert len(entities) == 1
    assert entities[0]["offset"] == len(before.encode("utf-16-le")) // 2
    assert entities[0]["length"] == len(inside.encode("utf-16-le")) // 2
