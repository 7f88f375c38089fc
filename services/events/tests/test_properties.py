"""Property tests: any Unicode renders into messages Telegram accepts, and secrets never leave."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import SubmitEvent
from cctelegram_events.rendering import render_approval_card, render_message_parts
from cctelegram_events.telegram_html import utf16_len
from cctelegram_testing.sandbox import format_text

SECRETS = (
    "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX",  # Telegram bot token
    "cctg_ab12cd34_0123456789abcdefXYZ",  # our API key
    "AKIAIOSFODNN7EXAMPLE",  # AWS access key id
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",  # GitHub token
    "sk-ant-api03-abcdefghijklmnopqrstuvwx",  # Anthropic / OpenAI style key
    "xoxb-123456789012-abcdefghijkl",  # Slack token
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXBhcnQ",  # JWT
)
# Secrets that need their context to be recognisable: (text, the part that must vanish).
CONTEXT_SECRETS = (
    ("https://deploy:Pa55w0rd-x@git.example.com/repo", "Pa55w0rd-x"),
    ("password=correct-horse-battery", "correct-horse-battery"),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
    ),
)

text = st.text(max_size=300)
titles = st.text(min_size=1, max_size=200)
values: st.SearchStrategy[Any] = st.one_of(
    text,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(text, max_size=60),
    st.dictionaries(text, text, max_size=5),
)
data = st.dictionaries(
    st.sampled_from(["status", "results", "url", "file_path", "error_message", "anything", "tags"])
    | text,
    values,
    max_size=12,
)


def check_sendable(parts: list[str]) -> str:
    visible = ""
    for part in parts:
        assert utf16_len(part) <= 4096
        shown, entities = format_text(part, "HTML")  # raises like Telegram on bad HTML
        assert shown.strip()
        assert len(entities) <= 100
        visible += shown
    return visible


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(list(EventType)),
    title=titles,
    description=st.text(max_size=4000),
    event_data=data,
    style=st.sampled_from(["concise", "detailed"]),
)
def test_any_event_renders_into_sendable_messages(
    event_type: EventType, title: str, description: str, event_data: dict[str, Any], style: str
) -> None:
    event = SubmitEvent(
        event_id=uuid.uuid4().hex,
        type=event_type,
        title=title,
        description=description,
        data=event_data,
        client_id="c",
    )
    check_sendable(render_message_parts(event, style))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(
    before=text,
    after=text,
    secret_index=st.integers(0, len(SECRETS) + len(CONTEXT_SECRETS) - 1),
    where=st.sampled_from(["title", "description", "data"]),
    style=st.sampled_from(["concise", "detailed"]),
)
def test_no_secret_survives_rendering(
    before: str, after: str, secret_index: int, where: str, style: str
) -> None:
    if secret_index < len(SECRETS):
        secret = must_vanish = SECRETS[secret_index]
    else:
        secret, must_vanish = CONTEXT_SECRETS[secret_index - len(SECRETS)]
    # Secrets sit between words in real text: whitespace around them.
    carrier = f"{before} {secret} {after}"
    fields: dict[str, Any] = {"title": "t", "description": "", "data": {}}
    if where == "title":
        fields["title"] = f"{before[:50]} {secret}"[:200]
    elif where == "description":
        fields["description"] = carrier
    else:
        fields["data"] = {"results": carrier, "command": carrier}
    event = SubmitEvent(
        event_id=uuid.uuid4().hex,
        type=EventType.COMMAND_EXECUTED,
        client_id="c",
        **fields,
    )
    parts = render_message_parts(event, style)  # type: ignore[arg-type]
    visible = check_sendable(parts)
    assert must_vanish not in visible
    assert must_vanish not in "".join(parts)


@settings(max_examples=60, deadline=None)
@given(
    title=titles,
    description=st.text(max_size=2000),
    options=st.lists(st.text(min_size=1, max_size=100), min_size=1, max_size=10),
    details=st.none() | st.text(max_size=3000),
)
def test_any_approval_card_is_one_sendable_message(
    title: str, description: str, options: list[str], details: str | None
) -> None:
    card = render_approval_card(title, description, tuple(options), details, "src")
    check_sendable([card])
    assert utf16_len(card) <= 4096 - 400
