"""Strict mode: refuse parameters the Bot API does not define for a method.

Telegram ignores unknown parameters, so a client that sends its own bookkeeping (or a typo
of a real parameter) never finds out. With ``SandboxConfig.strict_params`` the sandbox answers
such a call with a Telegram-shaped 400 naming the parameter, and the calls log records it.
The lists are the Bot API's documented parameters of each method the sandbox serves (Bot API
9.x, with the deprecated ones Telegram still reads), not only the ones the sandbox acts on.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile

from .errors import BotApiError, bad_request
from .params import Params


def _names(names: str) -> frozenset[str]:
    return frozenset(names.split())


_SEND_COMMON = _names(
    "business_connection_id chat_id message_thread_id direct_messages_topic_id parse_mode"
    " disable_notification protect_content allow_paid_broadcast message_effect_id"
    " suggested_post_parameters reply_parameters reply_markup"
    # deprecated, still read by Telegram
    " reply_to_message_id allow_sending_without_reply"
)
_COMMANDS = _names("scope language_code")

KNOWN_PARAMETERS: dict[str, frozenset[str]] = {
    "getMe": frozenset(),
    "sendMessage": _SEND_COMMON
    | _names("text entities link_preview_options disable_web_page_preview"),
    "sendDocument": _SEND_COMMON
    | _names("document thumbnail thumb caption caption_entities disable_content_type_detection"),
    "sendPhoto": _SEND_COMMON
    | _names("photo caption caption_entities show_caption_above_media has_spoiler"),
    "editMessageText": _names(
        "business_connection_id chat_id message_id inline_message_id text parse_mode entities"
        " link_preview_options reply_markup disable_web_page_preview"
    ),
    "editMessageCaption": _names(
        "business_connection_id chat_id message_id inline_message_id caption parse_mode"
        " caption_entities show_caption_above_media reply_markup"
    ),
    "editMessageReplyMarkup": _names(
        "business_connection_id chat_id message_id inline_message_id reply_markup"
    ),
    "deleteMessage": _names("chat_id message_id"),
    "answerCallbackQuery": _names("callback_query_id text show_alert url cache_time"),
    "getUpdates": _names("offset limit timeout allowed_updates"),
    "setWebhook": _names(
        "url certificate ip_address max_connections allowed_updates drop_pending_updates"
        " secret_token"
    ),
    "deleteWebhook": _names("drop_pending_updates"),
    "getWebhookInfo": frozenset(),
    "setMyCommands": _COMMANDS | {"commands"},
    "getMyCommands": _COMMANDS,
    "deleteMyCommands": _COMMANDS,
    "getChat": _names("chat_id"),
    "sendChatAction": _names("business_connection_id chat_id message_thread_id action"),
    "getFile": _names("file_id"),
    "logOut": frozenset(),
    "close": frozenset(),
}

_ATTACH = "attach://"


def unknown_parameters(method: str, params: Params) -> list[str]:
    """The parameters of a call that ``method`` does not define, in the order sent.

    A multipart upload named by another parameter (``"thumbnail": "attach://thumb"``) is part
    of that parameter, not a parameter of its own.
    """
    known = KNOWN_PARAMETERS.get(method)
    if known is None:
        return []
    attached = {
        value.removeprefix(_ATTACH)
        for value in params.values.values()
        if isinstance(value, str) and value.startswith(_ATTACH)
    }
    return [
        name
        for name, value in params.values.items()
        if name not in known and not (isinstance(value, UploadFile) and name in attached)
    ]


def check_known_parameters(method: str, params: Params) -> None:
    """Raise Telegram's kind of 400 when the call carries a parameter ``method`` lacks."""
    unknown = unknown_parameters(method, params)
    if unknown:
        raise unknown_parameter_error(method, unknown)


def unknown_parameter_error(method: str, unknown: list[str]) -> BotApiError:
    names = ", ".join(unknown)
    return bad_request(f"unknown parameter(s) of {method}: {names} (sandbox strict mode)")
