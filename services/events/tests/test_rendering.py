"""Rendering: templates for every type, escaping, styles, splitting, redaction."""

from __future__ import annotations

import uuid

import pytest

from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_events.rendering import render_approval_card, render_event, render_message_parts
from cctelegram_events.telegram_html import split_html, utf16_len
from cctelegram_events.templates import TEMPLATES, catalogue
from cctelegram_testing.sandbox import format_text


def event(**fields: object) -> SubmitEvent:
    base: dict[str, object] = {
        "event_id": uuid.uuid4().hex,
        "type": EventType.INFO_NOTIFICATION,
        "title": "Title",
        "client_id": "c",
    }
    base.update(fields)
    return SubmitEvent.model_validate(base)


def telegram_accepts(html_text: str) -> str:
    """The visible text as Telegram would store it; raises like Telegram on bad HTML."""
    text, _entities = format_text(html_text, "HTML")
    assert text.strip(), "Telegram refuses empty messages"
    return text


def test_every_event_type_has_a_template_and_renders() -> None:
    assert set(TEMPLATES) == set(EventType)
    assert catalogue().count == len(EventType)
    for event_type in EventType:
        rendered = render_event(event(type=event_type, description="body"), "detailed")
        telegram_accepts(rendered)
        assert TEMPLATES[event_type].emoji in rendered


def test_values_are_escaped_and_unicode_titles_survive() -> None:
    rendered = render_event(
        event(
            title="Сборка: готово ✅ <b>not bold</b> & more",
            description="x < y && a > b",
            data={"url": 'https://example.com/?a=1&b="2"', "branch_name": "<main>"},
            type=EventType.GIT_PUSH,
        )
    )
    visible = telegram_accepts(rendered)
    assert "Сборка: готово ✅ <b>not bold</b> & more" in visible
    assert "x < y && a > b" in visible
    assert "<main>" in visible
    assert 'href="https://example.com/?a=1&amp;b=&quot;2&quot;"' in rendered


def test_concise_shows_fewer_fields_than_detailed() -> None:
    data = {
        "status": "done",
        "duration_ms": 1500,
        "results": "ok",
        "files_affected": [f"f{i}.py" for i in range(12)],
        "error_message": "none",
        "extra_field": "shown only in detailed",
    }
    concise = render_event(event(type=EventType.TASK_COMPLETION, data=data), "concise")
    detailed = render_event(event(type=EventType.TASK_COMPLETION, data=data), "detailed")
    assert "extra_field" not in concise
    assert "Extra field" in detailed
    assert "(+7 more)" in concise
    assert "1.5 s" in concise


def test_severity_badge_for_high_and_critical() -> None:
    rendered = render_event(event(type=EventType.SECURITY_ALERT, title="Leak"))
    assert "🔴 critical" in rendered
    low = render_event(event(type=EventType.TEST_PASSED, severity=Severity.LOW))
    assert "low" not in low


def test_secrets_are_redacted_before_rendering() -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"
    rendered = render_event(
        event(
            title=f"token {token}",
            description="postgres://admin:s3cr3t-pass@db/x and password=hunter22",
            data={"command": "curl -H 'Authorization: Bearer abcdefghijklmnop'"},
            type=EventType.COMMAND_EXECUTED,
        ),
        "detailed",
    )
    for secret in (token, "s3cr3t-pass", "hunter22", "abcdefghijklmnop"):
        assert secret not in rendered
    assert "[redacted]" in rendered


def test_long_text_is_split_into_valid_parts() -> None:
    # Escaping turns 4000 characters into far more than 4096 UTF-16 units of HTML.
    body = "&<>" * 1000 + "😀" * 1000
    data = {f"field_{i}": "word " * 300 for i in range(12)}
    parts = render_message_parts(
        event(description=body, type=EventType.CUSTOM_EVENT, data=data), "detailed"
    )
    assert len(parts) > 2
    joined = ""
    for part in parts:
        assert utf16_len(part) <= 4096
        joined += telegram_accepts(part)
    assert joined.count("😀") == 1000
    assert joined.count("&<>") == 1000


def test_split_reopens_open_tags() -> None:
    html_text = "<b>" + "a" * 5000 + "</b>"
    parts = split_html(html_text, limit=4096)
    assert len(parts) == 2
    assert all(part.startswith("<b>") and part.endswith("</b>") for part in parts)
    assert sum(len(telegram_accepts(part)) for part in parts) == 5000


def test_split_never_cuts_an_entity() -> None:
    html_text = "&amp;" * 2000
    for part in split_html(html_text, limit=100):
        assert telegram_accepts(part)
        assert part.endswith(";")


@pytest.mark.parametrize("options", [("Approve", "Deny"), ("Ship it", "Wait", "Roll back")])
def test_approval_card_is_one_valid_message_even_with_long_details(
    options: tuple[str, ...],
) -> None:
    card = render_approval_card("Deploy?", "to prod", options, "d" * 3000 + "&" * 500, "ci")
    telegram_accepts(card)
    assert utf16_len(card) <= 4096 - 400
    if options != ("Approve", "Deny"):
        assert "Roll back" in card
