"""Approval rules: what an option means, who decides, and each transition of the record — pure.

Every function here computes on an ``ApprovalRecord`` and returns a new one (or None when the
event changes nothing); none reads or writes storage. ``approvals.ApprovalService`` applies them
with compare-and-set, so a rule may run again on a re-read record and must stay side-effect free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cctelegram_common.contracts.approvals import (
    ON_TIMEOUT_EXPIRE,
    ApprovalRecord,
    ApprovalStatus,
    CardTarget,
    SubmitApproval,
)
from cctelegram_common.contracts.rpc import RefusalCode
from cctelegram_events.approval_cards import targets_of
from cctelegram_events.responses import APPROVE_ACTION, DENY_ACTION

NO_LONGER_OPEN = "This request is no longer open"
NOT_AN_APPROVER = "Sorry, only the listed approvers can answer this request."
INVALID_BUTTON = "This button is not valid."

_APPROVE_WORDS = frozenset(
    {"approve", "approved", "yes", "ok", "okay", "allow", "accept", "confirm", "proceed", "go"}
)
_DENY_WORDS = frozenset(
    {"deny", "denied", "reject", "no", "decline", "block", "stop", "abort", "refuse"}
)
_FIRST_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class ApprovalError(Exception):
    """A caller-facing refusal (``code`` as in RpcError: not_found, conflict, invalid)."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code: RefusalCode = code
        self.message = message


@dataclass(frozen=True)
class Person:
    """Who pressed or replied (Telegram's ``from``)."""

    user_id: int
    username: str | None = None
    first_name: str | None = None

    @property
    def display(self) -> str | None:
        return self.username or self.first_name


def classify_option(label: str) -> ApprovalStatus:
    """approved / rejected for approve- and deny-like labels, else ``decided``."""
    match = _FIRST_WORD.search(label.lower())
    word = match.group(0) if match else ""
    if word in _APPROVE_WORDS:
        return ApprovalStatus.APPROVED
    if word in _DENY_WORDS:
        return ApprovalStatus.REJECTED
    return ApprovalStatus.DECIDED


def action_for(label: str) -> str:
    """The response ``action``: approve / deny, or the custom label itself."""
    status = classify_option(label)
    if status is ApprovalStatus.APPROVED:
        return APPROVE_ACTION
    if status is ApprovalStatus.REJECTED:
        return DENY_ACTION
    return label


def match_option(text: str, options: tuple[str, ...]) -> int | None:
    """The option a text reply names ("approve", "Approve — looks fine"), or None."""
    lowered = text.strip().lower()
    for index, option in sorted(enumerate(options), key=lambda pair: -len(pair[1])):
        name = option.strip().lower()
        if lowered == name or (
            lowered.startswith(name) and not lowered[len(name) : len(name) + 1].isalnum()
        ):
            return index
    return None


def reply_option(record: ApprovalRecord, text: str) -> int | None:
    """The option a text reply to this card chooses: the one it names, else the card's
    ``text_reply_decides`` option, else None (the reply is only a comment)."""
    option_index = match_option(text, record.options)
    if option_index is None and record.text_reply_decides in record.options:
        # A card whose free-text reply is an answer (a deny reason, Claude's next step).
        option_index = record.options.index(record.text_reply_decides)
    return option_index


def valid_on_timeout(command: SubmitApproval) -> str:
    """``on_timeout`` as asked when it names an option, else ``expire``."""
    if command.on_timeout != ON_TIMEOUT_EXPIRE and command.on_timeout not in command.options:
        return ON_TIMEOUT_EXPIRE
    return command.on_timeout


def decide(
    record: ApprovalRecord,
    option_index: int,
    now: datetime,
    person: Person | None,
    comment: str | None = None,
    auto: bool = False,
) -> ApprovalRecord:
    """The record after ``option_index`` was chosen (by a person, or by on_timeout)."""
    label = record.options[option_index]
    return record.model_copy(
        update={
            "status": classify_option(label),
            "chosen_option": label,
            "chosen_index": option_index,
            "decided_by_user_id": person.user_id if person else None,
            "decided_by_username": person.display if person else None,
            "decided_at": now,
            "comment": comment if comment is not None else record.comment,
            "auto_applied": auto,
        }
    )


def vote(
    record: ApprovalRecord,
    option_index: int,
    now: datetime,
    person: Person,
    comment: str | None = None,
) -> ApprovalRecord:
    """A person's answer. Under a quorum an approve-like option is one vote until enough
    different approvers agreed; any other option (a deny) decides at once."""
    label = record.options[option_index]
    if record.quorum > 1 and classify_option(label) is ApprovalStatus.APPROVED:
        votes = tuple(dict.fromkeys((*record.approved_by, person.user_id)))
        counted = record.model_copy(
            update={
                "approved_by": votes,
                "comment": comment if comment is not None else record.comment,
            }
        )
        if len(votes) < record.quorum:
            return counted
        return decide(counted, option_index, now, person, comment)
    return decide(record, option_index, now, person, comment)


def next_due(record: ApprovalRecord) -> datetime:
    """When the due index should call back: the escalation first, then the expiry."""
    if record.escalate_at is not None and not record.escalated:
        return min(record.escalate_at, record.expires_at)
    return record.expires_at


# --- transitions: the record after an event, or None when the event changes nothing --------


def after_press(
    record: ApprovalRecord, option_index: int, now: datetime, person: Person
) -> ApprovalRecord | None:
    """An approver pressed an option's button."""
    if not record.is_open:
        return None
    return vote(record, option_index, now, person)


def after_text_reply(
    record: ApprovalRecord,
    option_index: int | None,
    now: datetime,
    person: Person,
    comment: str,
) -> ApprovalRecord | None:
    """An approver replied to the card: a vote when the reply chose an option, else a comment
    (on a closed card only the decider's first comment)."""
    if record.is_open and option_index is not None:
        return vote(record, option_index, now, person, comment=comment)
    if record.is_open:
        return record.model_copy(update={"comment": comment})
    if record.comment is None and record.decided_by_user_id == person.user_id:
        return record.model_copy(update={"comment": comment})
    return None


def after_cancel(record: ApprovalRecord, reason: str, now: datetime) -> ApprovalRecord | None:
    """The requester withdrew the approval."""
    if not record.is_open:
        return None
    return record.model_copy(
        update={
            "status": ApprovalStatus.CANCELLED,
            "cancel_reason": reason,
            "decided_at": now,
        }
    )


def after_timeout(record: ApprovalRecord, now: datetime) -> ApprovalRecord | None:
    """The approval fell due: ``on_timeout``'s option is applied, or it expires."""
    if not record.is_open or record.expires_at > now:
        return None
    if record.on_timeout in record.options:
        index = record.options.index(record.on_timeout)
        return decide(record, index, now, None, auto=True)
    return record.model_copy(update={"status": ApprovalStatus.EXPIRED, "decided_at": now})


def escalation_due(record: ApprovalRecord, now: datetime) -> bool:
    """Nobody answered before the escalation time, and it has not escalated yet."""
    return (
        record.is_open
        and not record.escalated
        and record.escalate_at is not None
        and record.escalate_at <= now
    )


def after_escalation(
    record: ApprovalRecord, approvers: tuple[int, ...], added: tuple[CardTarget, ...]
) -> ApprovalRecord | None:
    """The card also goes to ``added`` (once), whose ``approvers`` may then decide too."""
    if not record.is_open or record.escalated:
        return None
    targets = (*targets_of(record), *added)
    return record.model_copy(
        update={
            "escalated": True,
            "approvers": approvers,
            "card_targets": targets,
            "chat_ids": tuple(target.chat_id for target in targets),
            "card_outbox_ids": tuple(target.outbox_id for target in targets),
        }
    )
