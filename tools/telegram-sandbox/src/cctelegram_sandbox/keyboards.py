"""Validation of reply_markup, with Telegram's errors (BUTTON_DATA_INVALID and friends)."""

from __future__ import annotations

import json
from typing import Any

from .entities import check_link
from .errors import BUTTON_DATA_INVALID, bad_request

MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_OTHER_MARKUPS = ("keyboard", "remove_keyboard", "force_reply")


def _button_error(detail: str) -> Exception:
    return bad_request(f"can't parse inline keyboard button: {detail}")


def decode_json_param(value: Any) -> Any:
    """Nested objects arrive as JSON strings in query, form and multipart bodies."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def parse_reply_markup(raw: Any) -> dict[str, Any] | None:
    """The inline keyboard to store on the message, or None for other (or no) markups."""
    if raw is None or raw == "":
        return None
    try:
        markup = decode_json_param(raw)
    except ValueError:
        raise bad_request("can't parse reply keyboard markup JSON object") from None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if markup and not any(key in markup for key in _OTHER_MARKUPS):
            raise bad_request('can\'t find field "inline_keyboard"')
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    clean_rows: list[list[dict[str, Any]]] = []
    button_count = 0
    for row in rows:
        if not isinstance(row, list):
            raise bad_request(
                "can't parse inline keyboard button: InlineKeyboardButton must be an Array"
            )
        clean_row = []
        for button in row:
            clean_row.append(_parse_button(button))
            button_count += 1
        if clean_row:
            clean_rows.append(clean_row)
    if button_count > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    if not clean_rows:
        return None
    return {"inline_keyboard": clean_rows}


def _parse_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict):
        raise _button_error("InlineKeyboardButton must be an Object")
    text = button.get("text")
    if not isinstance(text, str):
        raise _button_error('Field "text" must be of type String')
    actions = [action for action in _BUTTON_ACTIONS if action in button]
    if not actions:
        raise _button_error("Text buttons are unallowed in the inline keyboard")
    action = actions[0]
    value = button[action]
    clean: dict[str, Any] = {"text": text}
    if action == "callback_data":
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise _button_error('Field "callback_data" must be of type String')
        if not 1 <= len(value.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request(BUTTON_DATA_INVALID)
    elif action == "url" and (not isinstance(value, str) or check_link(value) is None):
        raise bad_request("BUTTON_URL_INVALID")
    clean[action] = value
    for optional in ("style", "icon_custom_emoji_id"):
        if optional in button:
            clean[optional] = button[optional]
    return clean


def keyboard_callback_data(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(button text, callback_data) for every callback button on an inline keyboard."""
    if not markup:
        return []
    return [
        (button["text"], button["callback_data"])
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    ]
