"""Approval cards on Telegram: where each copy goes, its buttons, its messages and edits — pure.

A card's text is rendered by ``rendering`` (the generic card, the closed card's status line)
and ``claude_cards`` (Claude Code); this module places it: the targets (routed, private chats,
escalation), the signed keyboard, the outbox messages that send and edit every copy, and the
``msgref`` key that maps a Telegram message back to its approval. Nothing here publishes.
"""

from __future__ import annotations

from collections.abc import Iterable

from cctelegram_common.contracts.approvals import ApprovalRecord, CardTarget, SubmitApproval
from cctelegram_common.contracts.claude_code import ClaudeCodeCard
from cctelegram_common.contracts.outbox import InlineButton, Operation, OutboxMessage, outbox_id
from cctelegram_common.contracts.routing import RouteRule
from cctelegram_events.callbacks import CallbackSigner
from cctelegram_events.claude_cards import render_claude_code_card
from cctelegram_events.rendering import render_approval_card, render_closed_card
from cctelegram_events.routing import destinations_of

MSGREF_PREFIX = "msgref."


def msgref_key(chat_id: int, message_id: int, bot: str | None = None) -> str:
    """Which card a Telegram message is (message ids are per chat, and per bot)."""
    if bot is None:
        return f"{MSGREF_PREFIX}{chat_id}.{message_id}"
    return f"{MSGREF_PREFIX}{bot}.{chat_id}.{message_id}"


def open_card_text(command: SubmitApproval) -> str:
    """The text of the open card: Claude Code's own card, or the generic approval card."""
    if command.claude_code is not None:
        return render_claude_code_card(command, command.claude_code)
    return render_approval_card(
        command.title, command.description, command.options, command.details, command.source
    )


def private_chat_targets(approval_id: str, chats: Iterable[int]) -> tuple[CardTarget, ...]:
    """One card in each approver's private chat (approvals no route rule takes)."""
    return tuple(
        CardTarget(outbox_id=outbox_id(approval_id, chat, 0), chat_id=chat) for chat in chats
    )


def route_targets(
    approval_id: str,
    rules: Iterable[RouteRule],
    project: str | None,
    card: ClaudeCodeCard | None,
) -> tuple[CardTarget, ...]:
    """One card per distinct place the route rules name (bot, chat, forum topic)."""
    places = destinations_of(
        rules,
        project=project,
        session_key=card.session_key if card is not None else None,
        session_tag=card.session_tag if card is not None else None,
    )
    return tuple(
        CardTarget(
            outbox_id=outbox_id(approval_id, place.token, 0),
            chat_id=place.chat_id,
            bot=place.bot,
            message_thread_id=place.message_thread_id,
            topic=place.topic,
            route=place.rule.name if place.rule else None,
        )
        for place in places
    )


def targets_of(record: ApprovalRecord) -> tuple[CardTarget, ...]:
    """Every copy of the card: routed targets, or one per chat (records before routes)."""
    if record.card_targets:
        return record.card_targets
    return tuple(
        CardTarget(outbox_id=outbox_id, chat_id=chat)
        for chat, outbox_id in zip(record.chat_ids, record.card_outbox_ids, strict=True)
    )


def escalation_targets(record: ApprovalRecord, rule: RouteRule) -> tuple[CardTarget, ...]:
    """The places the escalation route adds: its targets the card is not already at."""
    card = record.claude_code
    project = record.project or (card.project if card is not None else None)
    known = {target.outbox_id for target in targets_of(record)}
    return tuple(
        target
        for target in route_targets(record.approval_id, [rule], project, card)
        if target.outbox_id not in known
    )


def keyboard_for(
    record: ApprovalRecord, signer: CallbackSigner
) -> tuple[tuple[InlineButton, ...], ...]:
    """One button per option; short labels two to a row."""
    buttons = [
        InlineButton(
            text=option if len(option) <= 64 else option[:63] + "…",
            callback_data=signer.sign(record.approval_id, index),
        )
        for index, option in enumerate(record.options)
    ]
    per_row = 2 if all(len(option) <= 20 for option in record.options) else 1
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row))


def card_messages(
    record: ApprovalRecord, targets: Iterable[CardTarget], signer: CallbackSigner
) -> list[OutboxMessage]:
    """The open card with its buttons, one message per target."""
    keyboard = keyboard_for(record, signer)
    return [
        OutboxMessage(
            outbox_id=target.outbox_id,
            operation=Operation.SEND_MESSAGE,
            chat_id=target.chat_id,
            bot=target.bot,
            message_thread_id=target.message_thread_id,
            topic=target.topic,
            event_id=record.approval_id,
            approval_id=record.approval_id,
            text=record.card_text,
            keyboard=keyboard,
        )
        for target in targets
    ]


def card_edits(
    record: ApprovalRecord,
    suffix: str,
    timezone: str,
    signer: CallbackSigner,
    *,
    progress: bool = False,
) -> list[OutboxMessage]:
    """Edits of every copy of the card: closed (buttons gone), or — ``progress`` — still open
    with the quorum's count so far. ``suffix`` tells one edit of a card from the next."""
    keyboard = keyboard_for(record, signer) if progress else None
    text = (
        f"{record.card_text}\n\n☑️ {len(record.approved_by)} of {record.quorum} approvals"
        if progress
        else render_closed_card(record, timezone)
    )
    edits: list[OutboxMessage] = []
    for target in targets_of(record):
        # The default route keeps its historic ids: "<approval>:<chat>:closed".
        chat_part = target.outbox_id.removeprefix(f"{record.approval_id}:").rsplit(":", 1)[0]
        edits.append(
            OutboxMessage(
                outbox_id=outbox_id(record.approval_id, chat_part, suffix),
                operation=Operation.EDIT_MESSAGE_TEXT,
                chat_id=target.chat_id,
                bot=target.bot,
                event_id=record.approval_id,
                approval_id=record.approval_id,
                text=text,
                keyboard=keyboard,
                target_outbox_id=target.outbox_id,
            )
        )
    return edits
