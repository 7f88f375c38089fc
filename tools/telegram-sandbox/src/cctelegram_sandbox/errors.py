"""Telegram's error answers: the exception that carries them and the exact descriptions."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """A failed Bot API call, answered with Telegram's envelope and HTTP status."""

    def __init__(
        self, error_code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after_s: int) -> BotApiError:
    return BotApiError(
        429, f"Too Many Requests: retry after {retry_after_s}", {"retry_after": retry_after_s}
    )


def cant_parse_entities(detail: str) -> BotApiError:
    return bad_request(f"can't parse entities: {detail}")


NOT_FOUND = BotApiError(404, "Not Found")
UNAUTHORIZED = BotApiError(401, "Unauthorized")

CHAT_ID_EMPTY = "chat_id is empty"
CHAT_NOT_FOUND = "chat not found"
TEXT_EMPTY = "message text is empty"
TEXT_TOO_LONG = "message is too long"
CAPTION_TOO_LONG = "message caption is too long"
THREAD_NOT_FOUND = "message thread not found"
TOPIC_CLOSED = "TOPIC_CLOSED"
TOPIC_ID_INVALID = "TOPIC_ID_INVALID"
NOT_A_FORUM = "the chat is not a forum"
TOPIC_NAME_INVALID = "TOPIC_NAME_INVALID"
REPLY_NOT_FOUND = "message to be replied not found"
EDIT_NOT_FOUND = "message to edit not found"
DELETE_NOT_FOUND = "message to delete not found"
CANT_EDIT = "message can't be edited"
CANT_DELETE = "message can't be deleted for everyone"
NO_TEXT_TO_EDIT = "there is no text in the message to edit"
NO_CAPTION_TO_EDIT = "there is no caption in the message to edit"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MESSAGE_ID_EMPTY = "message identifier is not specified"
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
BUTTON_DATA_INVALID = "BUTTON_DATA_INVALID"
UNSUPPORTED_PARSE_MODE = "unsupported parse_mode"
GROUP_UPGRADED = "group chat was upgraded to a supergroup chat"
BLOCKED = "bot was blocked by the user"
DEACTIVATED = "user is deactivated"
WEBHOOK_ACTIVE_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLLER_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
