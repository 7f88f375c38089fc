"""Burst coalescing: consecutive plain notifications waiting in one chat's lane become one
Telegram message (each original visibly separated), within Telegram's limits after entity
parsing. Pure functions; the lane (``outbox.py``) decides when to use them."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cctelegram_common.contracts.outbox import Operation, OutboxMessage

# A thin rule line between the originals (U+2500 BOX DRAWINGS LIGHT HORIZONTAL): plain text
# in every parse mode, so it needs no escaping and adds no entity.
RULE = "\u2500" * 12
SEPARATOR = f"\n{RULE}\n"

# Telegram's limits on one message's text, measured after entity parsing, in UTF-16 units.
MAX_TEXT_UTF16 = 4096
MAX_ENTITIES = 100  # entities beyond the hundredth are dropped silently: never go past it

# Telegram's HTML parse mode (Bot API "HTML style"): the tags it accepts.
_HTML_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler",
        "tg-emoji", "tg-time", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#x([0-9a-fA-F]{1,6}));")


def _utf16_units(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Measure:
    """What one text costs inside a message: visible UTF-16 units and entities (upper bounds)."""

    utf16: int
    entities: int


def measure(text: str, parse_mode: str | None) -> Measure | None:
    """Visible length and entity count of ``text`` as Telegram would parse it, or None when
    this text is not one we can vouch for (it is then sent alone, under the usual policy).

    Upper bounds: an unknown ``&name;`` counts at its raw length, and every tag as an entity.
    """
    mode = (parse_mode or "").lower()
    if mode == "":
        return Measure(_utf16_units(text), 0)
    if mode != "html":
        return None  # Markdown(V2) would need its own escaping of the rule: not merged
    units = entities = position = 0
    open_tags: list[str] = []
    while position < len(text):
        character = text[position]
        if character == "<":
            tag = _TAG.match(text, position)
            if tag is None:
                return None  # Telegram would refuse it ("can't parse entities")
            closing, name = tag.group(1) == "/", tag.group(2).lower()
            if name not in _HTML_TAGS:
                return None
            if closing:
                if not open_tags or open_tags.pop() != name:
                    return None
            else:
                open_tags.append(name)
                entities += 1
            position = tag.end()
        elif character == "&" and (entity := _ENTITY.match(text, position)) is not None:
            number = entity.group(2) or entity.group(3)
            code = int(number, 10 if entity.group(2) else 16) if number else 1
            if code == 0 or 0xD800 <= code <= 0xDFFF or code >= 0x10FFFF:
                units += entity.end() - position  # Telegram keeps it as written
            else:
                units += 2 if code > 0xFFFF else 1
            position = entity.end()
        else:
            units += 2 if ord(character) > 0xFFFF else 1
            position += 1
    if open_tags:
        return None  # an unclosed tag would swallow the next original
    return Measure(units, entities)


# Fields that belong to each original and may differ inside one merged message. Every other
# field (chat, thread, parse mode, extra Bot API parameters, and any field added later) must
# be equal: a new field keeps messages apart until someone decides it may be merged.
_PER_ORIGINAL = frozenset(
    {
        "outbox_id",
        "event_id",
        "approval_id",
        "text",
        "parse_mode",
        "disable_notification",
        "created_at",
    }
)


def merge_key(message: OutboxMessage) -> str | None:
    """Messages with the same key may share one Telegram message; None: never merged.

    Plain notifications only: a text ``sendMessage`` without buttons, not a reply, in a parse
    mode we can measure (HTML or none). Same chat, same forum thread, same parse mode, the
    same extra Bot API parameters (a digest's bookkeeping makes it stand alone) and the same
    value of every other field.
    """
    if (
        message.operation is not Operation.SEND_MESSAGE
        or not message.text
        or message.keyboard is not None
        or message.reply_to_message_id is not None
    ):
        return None
    mode = (message.parse_mode or "").lower()
    if mode not in ("", "html"):
        return None
    try:
        shared = json.dumps(
            message.model_dump(mode="json", exclude=set(_PER_ORIGINAL)), sort_keys=True
        )
    except (TypeError, ValueError):
        return None
    return f"{mode}|{shared}"


def plan(
    messages: Sequence[OutboxMessage],
    *,
    max_utf16: int = MAX_TEXT_UTF16,
    max_entities: int = MAX_ENTITIES,
    max_messages: int = 100,
) -> int:
    """How many of ``messages`` (from the first, consecutive) go into one Telegram message.

    Stops at the first message that cannot join: a card with buttons, another thread, a
    text we cannot measure, or one that would pass the length or entity limit. At least 1.
    """
    if not messages:
        return 0
    key = merge_key(messages[0])
    if key is None:
        return 1
    separator = _utf16_units(SEPARATOR)
    units = entities = taken = 0
    for message in messages[:max_messages]:
        if merge_key(message) != key:
            break
        cost = measure((message.text or "").strip(), message.parse_mode)
        if cost is None:
            break
        added = cost.utf16 + (separator if taken else 0)
        if units + added > max_utf16 or entities + cost.entities > max_entities:
            break
        units, entities, taken = units + added, entities + cost.entities, taken + 1
    return max(taken, 1)


def join(texts: Sequence[str]) -> str:
    return SEPARATOR.join(text.strip() for text in texts)


def merged_message(members: Sequence[OutboxMessage]) -> OutboxMessage:
    """One ``sendMessage`` carrying every member's text, in order, separated by a rule.

    Silent only when every member asked to be silent. The id names the first member and the
    count (logs and traces); the members' own ids are what gets recorded and reported.
    """
    first = members[0]
    return first.model_copy(
        update={
            "outbox_id": f"{first.outbox_id}+{len(members) - 1}",
            "event_id": None,
            "text": join([member.text or "" for member in members]),
            "disable_notification": all(member.disable_notification for member in members),
        }
    )


def replace_member(
    members: Sequence[tuple[str, str]], outbox_id: str, text: str
) -> list[tuple[str, str]] | None:
    """The members of a merged message with one original's text replaced (an edit of it),
    or None when ``outbox_id`` is not one of them."""
    if all(member_id != outbox_id for member_id, _ in members):
        return None
    return [
        (member_id, text.strip() if member_id == outbox_id else member_text)
        for member_id, member_text in members
    ]
