"""Events to Telegram HTML: the type's template, escaped values, concise or detailed style."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_common.redaction import redact
from cctelegram_events.telegram_html import (
    MAX_MESSAGE_UTF16,
    safe,
    safe_attr,
    split_html,
    utf16_len,
)
from cctelegram_events.templates import FIELD_LABELS, SEVERITY_BADGE, template_for

Style = Literal["concise", "detailed"]

_CONCISE_FIELDS = 4
_DETAILED_EXTRA_FIELDS = 20
_LIST_ITEMS = {"concise": 5, "detailed": 30}
_VALUE_CHARS = {"concise": 300, "detailed": 1500}


def severity_of(event: SubmitEvent) -> Severity:
    """The explicit severity, else ``data.severity`` when valid, else the type's default."""
    if event.severity is not None:
        return event.severity
    raw = event.data.get("severity")
    if isinstance(raw, str) and raw.lower() in Severity._value2member_map_:
        return Severity(raw.lower())
    return template_for(event.type).severity


def _label(key: str) -> str:
    return FIELD_LABELS.get(key, key.replace("_", " ").capitalize())


def _format_value(key: str, value: Any, style: Style) -> str:
    """One data value as escaped HTML (links become ``<a>`` only for http(s) URLs)."""
    limit = _VALUE_CHARS[style]
    if key == "url" and isinstance(value, str) and value.startswith(("http://", "https://")):
        shown = value if len(value) <= 200 else value[:199] + "…"
        return f'<a href="{safe_attr(value[:2000])}">{safe(shown)}</a>'
    if key == "duration_ms" and isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000
        text = f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        return safe(text)
    if key in ("coverage_percentage", "cpu_usage_percent") and isinstance(value, int | float):
        return safe(f"{value}%")
    if key == "memory_usage_mb" and isinstance(value, int | float):
        return safe(f"{value} MB")
    if key == "commit_hash" and isinstance(value, str):
        return f"<code>{safe(value[:12])}</code>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        items = [str(item) for item in value]
        shown_items = items[: _LIST_ITEMS[style]]
        text = ", ".join(shown_items)
        if len(items) > len(shown_items):
            text += f" (+{len(items) - len(shown_items)} more)"
        return safe(text[:limit])
    if isinstance(value, Mapping):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return f"<code>{safe(text[:limit])}</code>"
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return safe(text)


def _field_lines(event: SubmitEvent, style: Style) -> list[str]:
    template = template_for(event.type)
    known = [key for key in template.fields if event.data.get(key) not in (None, "", [], {})]
    if style == "concise":
        keys = [key for key in known if key != "severity"][:_CONCISE_FIELDS]
    else:
        others = [
            key
            for key in event.data
            if key not in template.fields and event.data[key] not in (None, "", [], {})
        ]
        keys = [key for key in known if key != "severity"] + others[:_DETAILED_EXTRA_FIELDS]
    return [
        f"<b>{safe(_label(key))}:</b> {_format_value(key, event.data[key], style)}" for key in keys
    ]


def render_event(event: SubmitEvent, style: Style = "concise") -> str:
    """The whole message as one HTML string (``split_html`` cuts it into sendable parts)."""
    template = template_for(event.type)
    severity = severity_of(event)
    lines = [f"{template.emoji} <b>{safe(event.title)}</b>"]
    if style == "detailed" or severity in (Severity.HIGH, Severity.CRITICAL):
        lines.append(f"<i>{safe(template.label)} · {SEVERITY_BADGE[severity]}</i>")
    if event.description and event.type is not EventType.INFO_NOTIFICATION:
        lines.append("")
        lines.append(safe(event.description))
    elif event.description:
        lines.append(safe(event.description))
    fields = _field_lines(event, style)
    if fields:
        lines.append("")
        lines.extend(fields)
    if style == "detailed":
        footer = [f"source: {safe(event.source)}"]
        if event.task_id:
            footer.append(f"task: <code>{safe(event.task_id)}</code>")
        lines.append("")
        lines.append("<i>" + " · ".join(footer) + "</i>")
    return "\n".join(lines)


def render_message_parts(event: SubmitEvent, style: Style = "concise") -> list[str]:
    """The event as Telegram HTML messages, each within Telegram's limits."""
    return split_html(render_event(event, style))


# --- approval cards ------------------------------------------------------------------------

_STATUS_LINE = {
    ApprovalStatus.APPROVED: "✅ Approved",
    ApprovalStatus.REJECTED: "❌ Rejected",
    ApprovalStatus.DECIDED: "☑️",
    ApprovalStatus.EXPIRED: "⌛ Expired",
    ApprovalStatus.CANCELLED: "🚫 Cancelled",
}
# Room kept free on a card for the status line added when it is decided.
_STATUS_RESERVE = 400


def render_approval_card(
    title: str, description: str, options: tuple[str, ...], details: str | None, source: str
) -> str:
    """The card of an open approval; always one message (details are trimmed to fit)."""
    lines = [f"🙋 <b>{safe(title)}</b>", "<i>Approval needed</i>", ""]
    if description:
        lines.append(safe(description))
    if len(options) > 2 or options != ("Approve", "Deny"):
        lines.append("")
        lines.append("Options: " + " · ".join(f"<b>{safe(option)}</b>" for option in options))
    lines.append(f"<i>from {safe(source)}</i>")
    card = "\n".join(lines)
    budget = MAX_MESSAGE_UTF16 - _STATUS_RESERVE - utf16_len(card) - 60
    if details and budget > 20:
        quoted = safe(details)
        if utf16_len(quoted) > budget:
            # Cut on the escaped text without splitting an entity.
            cut = quoted[:budget]
            amp = cut.rfind("&")
            if amp != -1 and ";" not in cut[amp:]:
                cut = cut[:amp]
            quoted = cut + "…"
        card += f"\n\n<b>Details</b>\n<blockquote expandable>{quoted}</blockquote>"
    if utf16_len(card) > MAX_MESSAGE_UTF16 - _STATUS_RESERVE:
        card = split_html(card, MAX_MESSAGE_UTF16 - _STATUS_RESERVE)[0]
    return card


def format_clock(moment: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%H:%M")


def approval_status_line(record: ApprovalRecord, timezone: str) -> str:
    """ "✅ Approved by @name · 14:02" and its siblings, escaped."""
    when = format_clock(record.decided_at, timezone) if record.decided_at else ""
    who = ""
    if record.decided_by_username:
        who = f" by @{safe(record.decided_by_username)}"
    elif record.decided_by_user_id is not None:
        who = f" by user {record.decided_by_user_id}"
    if record.auto_applied:
        head = f"⌛ No answer in time — applied <b>{safe(record.chosen_option or '')}</b>"
    elif record.status is ApprovalStatus.DECIDED:
        head = f"☑️ <b>{safe(record.chosen_option or '')}</b>"
    else:
        head = _STATUS_LINE.get(record.status, record.status.value)
    line = f"{head}{who}" + (f" · {when}" if when else "")
    if record.cancel_reason:
        line += f"\n<i>{safe(record.cancel_reason[:300])}</i>"
    if record.comment:
        line += f"\n💬 {safe(record.comment[:200])}"
    return line


def render_closed_card(record: ApprovalRecord, timezone: str) -> str:
    return f"{record.card_text}\n\n{approval_status_line(record, timezone)}"


def redact_text(text: str) -> str:
    """Plain text that leaves the service (command replies): secrets removed."""
    return redact(text)
