"""Cards for Claude Code: a tool use to allow, a question, a plan, a finished session.

Every card names the project and the session's short tag first, so a person with several
agents running tells them apart at a glance. The preview arrives redacted from the gateway;
it is escaped here and cut to fit one message with room for the status line.
"""

from __future__ import annotations

from cctelegram_common.contracts.approvals import SubmitApproval
from cctelegram_common.contracts.claude_code import CardKind, ClaudeCodeCard
from cctelegram_events.telegram_html import MAX_MESSAGE_UTF16, safe, split_html, utf16_len

_STATUS_RESERVE = 400
_HEADLINES = {
    CardKind.PERMISSION: "🔐 <b>{tool}</b> wants to run",
    CardKind.QUESTION: "❓ <b>Claude asks</b>",
    CardKind.PLAN: "🗺 <b>Plan ready for review</b>",
    CardKind.CONTINUE: "🏁 <b>Session finished</b>",
}
_FOOTERS = {
    CardKind.PERMISSION: "Reply with a reason to deny.",
    CardKind.QUESTION: "Press an answer, or reply with your own.",
    CardKind.PLAN: "Reply to send feedback and keep planning.",
    CardKind.CONTINUE: "Reply to this message to tell Claude what to do next.",
}


def _cut(escaped: str, budget: int) -> str:
    """Cut escaped text to ``budget`` UTF-16 units without splitting an entity."""
    if utf16_len(escaped) <= budget:
        return escaped
    cut = escaped[: max(budget, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def render_claude_code_card(command: SubmitApproval, card: ClaudeCodeCard) -> str:
    head = [
        f"📁 <b>{safe(card.project)}</b> · <code>{safe(card.session_tag)}</code>",
        _HEADLINES[card.kind].format(tool=safe(card.tool_name or "A tool")),
    ]
    if command.title and card.kind is not CardKind.PERMISSION:
        head.append(safe(command.title))
    if command.description:
        head.append(f"<i>{safe(command.description)}</i>")
    tail = [f"<i>{safe(_FOOTERS[card.kind])}</i>"]
    if card.kind is CardKind.PERMISSION and card.rule_hint:
        tail.insert(0, f"“Allow for this session” allows {safe(card.rule_hint)}.")
    skeleton = "\n".join(head) + "\n\n" + "\n".join(tail)
    budget = MAX_MESSAGE_UTF16 - _STATUS_RESERVE - utf16_len(skeleton) - 80
    body = ""
    if card.preview and budget > 20:
        quoted = _cut(safe(card.preview), budget)
        if card.preview_is_code:
            language = (
                f' class="language-{safe(card.preview_language)}"' if card.preview_language else ""
            )
            body = f"<pre><code{language}>{quoted}</code></pre>"
        elif len(card.preview) > 300:
            body = f"<blockquote expandable>{quoted}</blockquote>"
        else:
            body = f"<blockquote>{quoted}</blockquote>"
    text = "\n".join(head) + ("\n\n" + body if body else "") + "\n\n" + "\n".join(tail)
    if utf16_len(text) > MAX_MESSAGE_UTF16 - _STATUS_RESERVE:
        text = split_html(text, MAX_MESSAGE_UTF16 - _STATUS_RESERVE)[0]
    return text
