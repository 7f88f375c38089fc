"""The Bot API methods: each reads its parameters, checks Telegram's rules, changes state."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import (
    CANT_DELETE,
    CANT_EDIT,
    DELETE_NOT_FOUND,
    EDIT_NOT_FOUND,
    MESSAGE_ID_EMPTY,
    NO_CAPTION_TO_EDIT,
    NO_TEXT_TO_EDIT,
    NOT_A_FORUM,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    REPLY_NOT_FOUND,
    TEXT_EMPTY,
    THREAD_NOT_FOUND,
    TOPIC_CLOSED,
    TOPIC_ID_INVALID,
    TOPIC_NAME_INVALID,
    BotApiError,
    bad_request,
    too_many_requests,
)
from .formatting import MAX_CAPTION_UTF16, format_text
from .keyboards import parse_reply_markup
from .models import GENERAL_TOPIC_ID, Chat, JsonDict, StoredFile, StoredMessage
from .params import Params
from .state import MESSAGE_ACCESS_WINDOW_S, Sandbox
from .webhook import SECRET_TOKEN_PATTERN, WebhookDelivery, WebhookSettings, validate_webhook_url

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# What getFile hands a bot (larger files are refused: "file is too big").
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
MAX_CALLBACK_ANSWER_CHARS = 200
_COMMAND_PATTERN = re.compile(r"[a-z0-9_]{1,32}")
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note",
        "upload_video_note",
    }
)  # fmt: skip


@dataclass
class Described:
    """A successful result that Telegram answers with a description too (setWebhook)."""

    result: Any
    description: str


Handler = Callable[[Sandbox, Params], Awaitable[Any]]


async def get_me(sandbox: Sandbox, params: Params) -> Any:
    return sandbox.get_me()


def _thread(sandbox: Sandbox, chat: Chat, params: Params) -> int | None:
    thread_id = params.integer("message_thread_id")
    if not thread_id:
        return None
    if chat.is_forum:
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise bad_request(THREAD_NOT_FOUND)
        if topic.closed:
            # The sandbox's bot is not an admin of the forum: a closed topic refuses it.
            raise bad_request(TOPIC_CLOSED)
        return None if thread_id == GENERAL_TOPIC_ID else thread_id
    if sandbox.live_message(chat, thread_id) is None:
        raise bad_request(THREAD_NOT_FOUND)
    return thread_id


def _reply_target(sandbox: Sandbox, chat: Chat, params: Params) -> StoredMessage | None:
    reply_parameters = params.json("reply_parameters")
    allow_missing = params.flag("allow_sending_without_reply")
    target_chat = chat
    if isinstance(reply_parameters, dict):
        message_id = reply_parameters.get("message_id")
        allow_missing = bool(reply_parameters.get("allow_sending_without_reply", allow_missing))
        if reply_parameters.get("chat_id") not in (None, ""):
            target_chat = sandbox.resolve_chat_id(reply_parameters["chat_id"])
    elif reply_parameters is not None:
        raise bad_request("can't parse reply parameters JSON object")
    else:
        message_id = params.integer("reply_to_message_id")
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id == 0:
        if reply_parameters is not None and not allow_missing:
            raise bad_request(REPLY_NOT_FOUND)
        return None
    target = sandbox.live_message(target_chat, message_id)
    if target is None and not allow_missing:
        raise bad_request(REPLY_NOT_FOUND)
    return target


def _place(sandbox: Sandbox, chat: Chat, params: Params) -> tuple[int | None, StoredMessage | None]:
    thread_id = _thread(sandbox, chat, params)
    reply_to = _reply_target(sandbox, chat, params)
    if thread_id is None and reply_to is not None and reply_to.chat is chat:
        thread_id = reply_to.thread_id
    return thread_id, reply_to


def _deliver(
    sandbox: Sandbox, chat: Chat, params: Params, *, parse_mode: str | None, **content: Any
) -> Any:
    """The part every send shares: keyboard, topic and reply, flood control, storing."""
    reply_markup = parse_reply_markup(params.raw("reply_markup"))
    thread_id, reply_to = _place(sandbox, chat, params)
    sandbox.flood.acquire(chat.id, paid_broadcast=params.flag("allow_paid_broadcast"))
    message = sandbox.store_message(
        chat,
        from_bot=True,
        sender=sandbox.bot_user(),
        reply_markup=reply_markup,
        thread_id=thread_id,
        reply_to=reply_to,
        parse_mode=parse_mode or None,
        **content,
    )
    return message.to_api()


async def send_message(sandbox: Sandbox, params: Params) -> Any:
    chat = sandbox.writable_chat(params.raw("chat_id"))
    raw_text, parse_mode, text, entities = _message_text(params)
    return _deliver(
        sandbox, chat, params, parse_mode=parse_mode, text=text, entities=entities,
        source_text=raw_text,
    )  # fmt: skip


def _caption(params: Params) -> tuple[str, str | None, str, list[JsonDict]]:
    """The caption as sent, its parse mode, and the caption + entities Telegram stores."""
    raw_caption = params.text("caption") or ""
    parse_mode = params.text("parse_mode")
    caption, caption_entities = format_text(
        raw_caption,
        parse_mode,
        params.json("caption_entities"),
        max_utf16=MAX_CAPTION_UTF16,
        too_long="message caption is too long",
    )
    return raw_caption, parse_mode, caption, caption_entities


def _message_text(params: Params) -> tuple[str, str | None, str, list[JsonDict]]:
    """The text as sent, its parse mode, and the text + entities Telegram stores."""
    raw_text = params.text("text")
    if not raw_text:
        raise bad_request(TEXT_EMPTY)
    parse_mode = params.text("parse_mode")
    text, entities = format_text(raw_text, parse_mode, params.json("entities"))
    if not text:
        raise bad_request(TEXT_EMPTY)
    return raw_text, parse_mode, text, entities


async def _read_file(sandbox: Sandbox, params: Params, kind: str, limit_bytes: int) -> StoredFile:
    upload = params.upload(kind)
    if upload is not None:
        content = await upload.read()
        if len(content) > limit_bytes:
            if kind == "photo":
                raise bad_request("PHOTO_INVALID_DIMENSIONS")
            raise BotApiError(413, "Request Entity Too Large")
        if not content:
            raise bad_request("file must be non-empty")
        stored = sandbox.files.add_upload(kind, content, upload.filename, upload.content_type)
        if kind == "photo" and stored.width is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        return stored
    reference = params.text(kind)
    if not reference:
        raise bad_request(f"there is no {kind} in the request")
    if reference.startswith(("http://", "https://")):
        return sandbox.files.add_url(kind, reference)
    known = sandbox.files.get(reference)
    if known is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if known.kind != kind:
        raise bad_request(
            f"can't use file of type {known.kind.capitalize()} as {kind.capitalize()}"
        )
    return known


async def _send_file(sandbox: Sandbox, params: Params, kind: str, limit_bytes: int) -> Any:
    chat = sandbox.writable_chat(params.raw("chat_id"))
    stored = await _read_file(sandbox, params, kind, limit_bytes)
    raw_caption, parse_mode, caption, caption_entities = _caption(params)
    return _deliver(
        sandbox, chat, params, parse_mode=parse_mode, caption=caption or None,
        caption_entities=caption_entities, file=stored, source_text=raw_caption or None,
    )  # fmt: skip


async def send_document(sandbox: Sandbox, params: Params) -> Any:
    return await _send_file(sandbox, params, "document", MAX_DOCUMENT_BYTES)


async def send_photo(sandbox: Sandbox, params: Params) -> Any:
    return await _send_file(sandbox, params, "photo", MAX_PHOTO_BYTES)


def _target_message(sandbox: Sandbox, chat: Chat, params: Params, not_found: str) -> StoredMessage:
    message_id = params.integer("message_id")
    if not message_id:
        raise bad_request(MESSAGE_ID_EMPTY)
    message = sandbox.live_message(chat, message_id)
    if message is None:
        raise bad_request(not_found)
    return message


def _message_to_edit(sandbox: Sandbox, params: Params) -> StoredMessage:
    if params.raw("inline_message_id") not in (None, ""):
        raise bad_request("MESSAGE_ID_INVALID")
    chat = sandbox.writable_chat(params.raw("chat_id"))
    message = _target_message(sandbox, chat, params, EDIT_NOT_FOUND)
    if not message.from_bot or message.service:
        raise bad_request(CANT_EDIT)
    return message


def _apply_edit(sandbox: Sandbox, message: StoredMessage, params: Params, changes: JsonDict) -> Any:
    """Edit with the request's keyboard (none given removes it); not-modified and flood apply."""
    changes["reply_markup"] = parse_reply_markup(params.raw("reply_markup"))
    current = message.content_snapshot()
    if all(current[name] == value for name, value in changes.items() if name in _COMPARED):
        raise bad_request(NOT_MODIFIED)
    sandbox.flood.acquire(message.chat.id)
    message.history.append(current)
    for name, value in changes.items():
        setattr(message, name, value)
    message.edit_date = int(sandbox.clock.time())
    sandbox.feed.publish(f"chat:{message.chat.id}")
    return message.to_api()


# What "message is not modified" compares: the content and the keyboard, not how it was written.
_COMPARED = frozenset({"text", "entities", "caption", "caption_entities", "reply_markup"})


async def edit_message_text(sandbox: Sandbox, params: Params) -> Any:
    message = _message_to_edit(sandbox, params)
    if not params.text("text"):
        raise bad_request(TEXT_EMPTY)
    if message.text is None:
        raise bad_request(NO_TEXT_TO_EDIT)
    raw_text, parse_mode, text, entities = _message_text(params)
    changes = {"text": text, "entities": entities, "source_text": raw_text}
    return _apply_edit(sandbox, message, params, {**changes, "parse_mode": parse_mode or None})


async def edit_message_caption(sandbox: Sandbox, params: Params) -> Any:
    message = _message_to_edit(sandbox, params)
    if message.file is None:
        raise bad_request(NO_CAPTION_TO_EDIT)
    raw_caption, parse_mode, caption, caption_entities = _caption(params)
    changes = {"caption": caption or None, "caption_entities": caption_entities}
    changes.update(parse_mode=parse_mode or None, source_text=raw_caption or None)
    return _apply_edit(sandbox, message, params, changes)


async def edit_message_reply_markup(sandbox: Sandbox, params: Params) -> Any:
    return _apply_edit(sandbox, _message_to_edit(sandbox, params), params, {})


async def delete_message(sandbox: Sandbox, params: Params) -> Any:
    chat = sandbox.resolve_chat_id(params.raw("chat_id"))
    message = _target_message(sandbox, chat, params, DELETE_NOT_FOUND)
    if sandbox.clock.time() - message.date >= MESSAGE_ACCESS_WINDOW_S or message.service:
        raise bad_request(CANT_DELETE)
    message.deleted = True
    sandbox.feed.publish(f"chat:{chat.id}")
    sandbox.feed.publish("chats")
    return True


async def answer_callback_query(sandbox: Sandbox, params: Params) -> Any:
    query_id = params.text("callback_query_id") or ""
    record = sandbox.callback_queries.get(query_id)
    if (
        record is None
        or record.answered
        or sandbox.clock.time() - record.created_at > sandbox.config.callback_query_ttl_s
    ):
        raise bad_request(QUERY_TOO_OLD)
    text = params.text("text")
    if text is not None and len(text) > MAX_CALLBACK_ANSWER_CHARS:
        raise bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    record.answer = {
        "text": text,
        "show_alert": params.flag("show_alert"),
        "url": params.text("url"),
        "cache_time": params.integer("cache_time") or 0,
        "answered_at": sandbox.clock.time(),
    }
    sandbox.feed.publish(f"chat:{record.chat_id}")
    sandbox.feed.publish("callbacks")
    return True


async def get_updates(sandbox: Sandbox, params: Params) -> Any:
    allowed = params.json("allowed_updates")
    if allowed is not None:
        if not isinstance(allowed, list) or not all(isinstance(name, str) for name in allowed):
            raise bad_request("can't parse allowed_updates JSON object")
        sandbox.updates.set_allowed_updates(allowed)
    limit = params.integer("limit")
    limit = 100 if not limit or limit > 100 else max(limit, 1)
    updates = await sandbox.updates.get_updates(
        params.integer("offset") or 0, limit, params.number("timeout") or 0.0
    )
    return [update.to_api() for update in updates]


def _check_webhook_rate(sandbox: Sandbox) -> None:
    now = sandbox.clock.time()
    last = sandbox.last_webhook_change_at
    if last is not None and now - last < 1.0:
        raise too_many_requests(1)
    sandbox.last_webhook_change_at = now


async def _remove_webhook(sandbox: Sandbox, drop_pending_updates: bool) -> None:
    if sandbox.webhook is not None:
        await sandbox.webhook.stop()
        sandbox.webhook = None
    sandbox.updates.webhook_active = False
    if drop_pending_updates:
        sandbox.updates.clear()


async def set_webhook(sandbox: Sandbox, params: Params) -> Any:
    url = (params.text("url") or "").strip()
    if not url:
        return await delete_webhook(sandbox, params)
    validate_webhook_url(url)
    secret_token = params.text("secret_token")
    if secret_token is not None and not SECRET_TOKEN_PATTERN.fullmatch(secret_token):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.integer("max_connections") or 40
    max_connections = min(max(max_connections, 1), 100)
    allowed = params.json("allowed_updates")
    if allowed is not None and not isinstance(allowed, list):
        raise bad_request("can't parse allowed_updates JSON object")
    settings = WebhookSettings(url, secret_token or None, max_connections, allowed or None)
    current = sandbox.webhook
    drop_pending = params.flag("drop_pending_updates")
    if current is not None and current.settings == settings and not drop_pending:
        return Described(True, "Webhook is already set")
    _check_webhook_rate(sandbox)
    await _remove_webhook(sandbox, drop_pending)
    if allowed is not None:
        sandbox.updates.set_allowed_updates(allowed)
    delivery = WebhookDelivery(
        settings,
        sandbox.updates,
        sandbox.clock,
        sandbox.config.webhook_initial_backoff_s,
        sandbox.config.webhook_max_backoff_s,
    )
    sandbox.webhook = delivery
    sandbox.updates.webhook_active = True
    sandbox.updates.notify()
    delivery.start()
    return Described(True, "Webhook was set")


async def delete_webhook(sandbox: Sandbox, params: Params) -> Any:
    drop_pending = params.flag("drop_pending_updates")
    if sandbox.webhook is None:
        if drop_pending:
            sandbox.updates.clear()
        return Described(True, "Webhook is already deleted")
    _check_webhook_rate(sandbox)
    await _remove_webhook(sandbox, drop_pending)
    return Described(True, "Webhook was deleted")


async def get_webhook_info(sandbox: Sandbox, params: Params) -> Any:
    if sandbox.webhook is not None:
        return sandbox.webhook.info()
    return {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": len(sandbox.updates.pending),
    }


def _commands_key(params: Params) -> str:
    scope = params.json("scope")
    scope_type = scope.get("type", "default") if isinstance(scope, dict) else "default"
    chat_part = f":{scope.get('chat_id')}" if isinstance(scope, dict) and "chat_id" in scope else ""
    return f"{scope_type}{chat_part}|{params.text('language_code') or ''}"


async def set_my_commands(sandbox: Sandbox, params: Params) -> Any:
    commands = params.json("commands")
    if not isinstance(commands, list):
        raise bad_request('parameter "commands" is required')
    if len(commands) > 100:
        raise bad_request("too many commands")
    clean = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand: BotCommand must be an Object")
        name = str(command.get("command", "")).lstrip("/")
        description = str(command.get("description", ""))
        if not _COMMAND_PATTERN.fullmatch(name):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("command description must be non-empty")
        clean.append({"command": name, "description": description})
    sandbox.commands[_commands_key(params)] = clean
    sandbox.feed.publish("commands")
    return True


async def get_my_commands(sandbox: Sandbox, params: Params) -> Any:
    return sandbox.commands.get(_commands_key(params), [])


async def delete_my_commands(sandbox: Sandbox, params: Params) -> Any:
    sandbox.commands.pop(_commands_key(params), None)
    sandbox.feed.publish("commands")
    return True


async def get_chat(sandbox: Sandbox, params: Params) -> Any:
    chat = sandbox.resolve_chat_id(params.raw("chat_id"))
    if chat.state in ("kicked", "migrated"):
        sandbox.writable_chat(chat.id)
    return chat.to_full_info()


async def send_chat_action(sandbox: Sandbox, params: Params) -> Any:
    sandbox.writable_chat(params.raw("chat_id"))
    if params.text("action") not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


async def get_file(sandbox: Sandbox, params: Params) -> Any:
    stored = sandbox.files.get(params.text("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.file_size is not None and stored.file_size > MAX_DOWNLOAD_BYTES:
        raise bad_request("file is too big")
    result: JsonDict = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
    if stored.file_size is not None:
        result["file_size"] = stored.file_size
        result["file_path"] = f"{stored.kind}s/{stored.file_id}"
    return result


async def log_out(sandbox: Sandbox, params: Params) -> Any:
    return True


def _forum(sandbox: Sandbox, params: Params) -> Chat:
    chat = sandbox.writable_chat(params.raw("chat_id"))
    if not chat.is_forum:
        raise bad_request(NOT_A_FORUM)
    return chat


def _forum_topic(sandbox: Sandbox, params: Params) -> tuple[Chat, int]:
    chat = _forum(sandbox, params)
    thread_id = params.integer("message_thread_id")
    topic = chat.topics.get(thread_id or 0)
    if not thread_id or topic is None or topic.deleted:
        raise bad_request(TOPIC_ID_INVALID)
    return chat, thread_id


async def create_forum_topic(sandbox: Sandbox, params: Params) -> Any:
    chat = _forum(sandbox, params)
    name = (params.text("name") or "").strip()
    if not name or len(name) > 128:
        raise bad_request(TOPIC_NAME_INVALID)
    sandbox.flood.acquire(chat.id)  # the service message counts like any other
    topic = sandbox.create_topic(
        chat, name, by_bot=True, icon_color=params.integer("icon_color") or None
    )
    sandbox.feed.publish("chats")
    return topic.to_api()


async def close_forum_topic(sandbox: Sandbox, params: Params) -> Any:
    chat, thread_id = _forum_topic(sandbox, params)
    sandbox.set_topic_state(chat, thread_id, "closed")
    return True


async def reopen_forum_topic(sandbox: Sandbox, params: Params) -> Any:
    chat, thread_id = _forum_topic(sandbox, params)
    sandbox.set_topic_state(chat, thread_id, "open")
    return True


async def delete_forum_topic(sandbox: Sandbox, params: Params) -> Any:
    chat, thread_id = _forum_topic(sandbox, params)
    if thread_id == GENERAL_TOPIC_ID:
        raise bad_request(TOPIC_ID_INVALID)
    sandbox.set_topic_state(chat, thread_id, "deleted")
    return True


METHODS: dict[str, Handler] = {
    "getMe": get_me,
    "sendMessage": send_message,
    "sendDocument": send_document,
    "sendPhoto": send_photo,
    "editMessageText": edit_message_text,
    "editMessageCaption": edit_message_caption,
    "editMessageReplyMarkup": edit_message_reply_markup,
    "deleteMessage": delete_message,
    "answerCallbackQuery": answer_callback_query,
    "getUpdates": get_updates,
    "setWebhook": set_webhook,
    "deleteWebhook": delete_webhook,
    "getWebhookInfo": get_webhook_info,
    "setMyCommands": set_my_commands,
    "getMyCommands": get_my_commands,
    "deleteMyCommands": delete_my_commands,
    "getChat": get_chat,
    "createForumTopic": create_forum_topic,
    "closeForumTopic": close_forum_topic,
    "reopenForumTopic": reopen_forum_topic,
    "deleteForumTopic": delete_forum_topic,
    "sendChatAction": send_chat_action,
    "getFile": get_file,
    "logOut": log_out,
    "close": log_out,
}
# Method names are case-insensitive: look them up lower-cased, log them canonically.
METHODS_BY_LOWER_NAME: dict[str, tuple[str, Handler]] = {
    name.lower(): (name, handler) for name, handler in METHODS.items()
}
