"""Limits counted after parsing, in UTF-16 code units, and whitespace trimming."""

from __future__ import annotations

import pytest

from cctelegram_sandbox.entities import detect_entities, utf16_len
from cctelegram_sandbox.errors import BotApiError
from cctelegram_sandbox.formatting import format_text


def test_limit_counts_text_after_parsing() -> None:
    text, _ = format_text("<b>" + "a" * 4096 + "</b>", "HTML")
    assert len(text) == 4096


def test_limit_counts_utf16_units() -> None:
    emoji = "😀"  # two UTF-16 units
    assert utf16_len(emoji * 2048) == 4096
    format_text(emoji * 2048, None)
    with pytest.raises(BotApiError, match=r"^Bad Request: message is too long$"):
        format_text(emoji * 2048 + "a", None)


def test_caption_limit() -> None:
    format_text("a" * 1024, None, max_utf16=1024, too_long="message caption is too long")
    with pytest.raises(BotApiError, match="message caption is too long"):
        format_text("a" * 1025, None, max_utf16=1024, too_long="message caption is too long")


def test_only_the_first_hundred_entities_are_kept() -> None:
    _, entities = format_text("<b>x</b> " * 150, "HTML")
    assert len(entities) == 100


def test_surrounding_whitespace_is_trimmed_and_entities_follow() -> None:
    assert format_text("  \n<b>hi</b> there \n", "HTML") == (
        "hi there",
        [{"type": "bold", "offset": 0, "length": 2}],
    )


def test_unknown_parse_mode() -> None:
    with pytest.raises(BotApiError, match="unsupported parse_mode"):
        format_text("x", "BBCode")


def test_explicit_entities_are_kept() -> None:
    assert format_text("hello", None, [{"type": "bold", "offset": 0, "length": 5}]) == (
        "hello",
        [{"type": "bold", "offset": 0, "length": 5}],
    )


def test_detects_commands_mentions_hashtags_and_urls() -> None:
    entities = detect_entities("😀 /mute@bot 1h for @alice #ops https://x.io/a.")
    assert [(entity["type"], entity["offset"], entity["length"]) for entity in entities] == [
        ("bot_command", 3, 9),
        ("mention", 20, 6),
        ("hashtag", 27, 4),
        ("url", 32, 14),
    ]
