"""Claude Code sessions: activity, project, and the rules "Allow for this session" creates.

One record per (API client, session id) in ``cctg_sessions``, changed by compare-and-set.
The bucket's TTL ends a session that went idle; SessionEnd ends it at once. What a rule
allows is ``cctelegram_common.session_rules``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cctelegram_common.contracts.approvals import ApprovalRecord
from cctelegram_common.contracts.claude_code import (
    ALLOW_SESSION_OPTION,
    SessionCheckRequest,
    SessionCheckResult,
    SessionEndRequest,
    SessionRecord,
    SessionRule,
    SessionRuleRequest,
)
from cctelegram_common.session_rules import matches, rule_for
from cctelegram_events.approval_rules import ApprovalError
from cctelegram_events.ports import CasConflictError, Clock, KvStore, load

CAS_ATTEMPTS = 20
MAX_RULES = 50


def session_key(client_id: str, session_id: str) -> str:
    """The KV key: per client, so one client can never read or extend another's session."""
    return "s" + hashlib.sha256(f"{client_id}\x00{session_id}".encode()).hexdigest()[:40]


def session_tag(session_id: str) -> str:
    """A short tag a person can tell sessions apart by (first characters of the id)."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", session_id)
    return (cleaned or hashlib.sha256(session_id.encode()).hexdigest())[:6]


def project_of(cwd: str | None, explicit: str | None) -> str:
    if explicit and explicit.strip():
        return explicit.strip()[:100]
    if cwd:
        name = posixpath.basename(cwd.rstrip("/\\").replace("\\", "/"))
        if name:
            return name[:100]
    return "Claude Code"


@dataclass
class SessionService:
    sessions_kv: KvStore
    approvals_kv: KvStore
    clock: Clock

    async def _change(
        self, key: str, change: Callable[[SessionRecord | None], SessionRecord | None]
    ) -> SessionRecord | None:
        """Apply ``change`` to the stored record (None: absent) with compare-and-set."""
        for _ in range(CAS_ATTEMPTS):
            loaded = await load(self.sessions_kv, key, SessionRecord)
            current = loaded[0] if loaded else None
            updated = change(current)
            if updated is None:
                return current
            try:
                if loaded is None:
                    await self.sessions_kv.create(key, updated.model_dump_json().encode())
                else:
                    await self.sessions_kv.update(
                        key, updated.model_dump_json().encode(), loaded[1]
                    )
            except CasConflictError:
                continue
            return updated
        raise ApprovalError("conflict", "too many concurrent changes to the session; try again")

    async def check(self, request: SessionCheckRequest) -> SessionCheckResult:
        """Note the activity; say whether a rule of this session allows the tool use."""
        key = session_key(request.client_id, request.session_id)
        now = self.clock()
        allowed_by: list[str] = []

        def touch(record: SessionRecord | None) -> SessionRecord:
            if record is None or record.ended_at is not None:
                record = SessionRecord(
                    session_key=key,
                    client_id=request.client_id,
                    session_id=request.session_id,
                    project=project_of(request.cwd, request.project),
                    tag=session_tag(request.session_id),
                    cwd=request.cwd,
                    first_seen=now,
                    last_seen=now,
                )
            allowed_by.clear()
            rule = (
                next(
                    (
                        rule
                        for rule in record.rules
                        if matches(rule, request.tool_name, request.tool_input)
                    ),
                    None,
                )
                if request.tool_name
                else None
            )
            if rule is not None:
                allowed_by.append(rule.label)
            update: dict[str, Any] = {"last_seen": now}
            if request.project and request.project.strip() != record.project:
                update["project"] = project_of(None, request.project)
            if request.tool_name:
                field_name = "auto_allowed" if rule is not None else "asked"
                update[field_name] = getattr(record, field_name) + 1
            return record.model_copy(update=update)

        record = await self._change(key, touch)
        assert record is not None  # touch always returns a record
        return SessionCheckResult(
            session_key=key,
            project=record.project,
            tag=record.tag,
            allowed_by=allowed_by[0] if allowed_by else None,
        )

    async def add_rule(self, request: SessionRuleRequest) -> SessionRule:
        """The rule a decided "Allow for this session" approval stands for (idempotent)."""
        approval = await load(self.approvals_kv, request.approval_id, ApprovalRecord)
        card = approval[0].claude_code if approval else None
        if (
            approval is None
            or card is None
            or approval[0].client_id != request.client_id
            or card.session_key != request.session_key
        ):
            raise ApprovalError("not_found", f"no approval {request.approval_id} of this session")
        if approval[0].chosen_option != ALLOW_SESSION_OPTION:
            raise ApprovalError("conflict", "the approval was not decided 'Allow for this session'")
        rule = rule_for(request.tool_name, request.tool_input, request.approval_id).model_copy(
            update={"approved_by": approval[0].decided_by_username, "created_at": self.clock()}
        )

        def add(record: SessionRecord | None) -> SessionRecord | None:
            if record is None:
                raise ApprovalError("not_found", "the session has ended")
            if any(existing.rule_id == rule.rule_id for existing in record.rules):
                return None
            rules = (*record.rules, rule)[-MAX_RULES:]
            return record.model_copy(update={"rules": rules, "last_seen": self.clock()})

        await self._change(request.session_key, add)
        return rule

    async def end(self, request: SessionEndRequest) -> SessionCheckResult:
        """SessionEnd: the rules go; the record stays (ended) until the bucket's TTL."""
        key = session_key(request.client_id, request.session_id)
        now = self.clock()

        def finish(record: SessionRecord | None) -> SessionRecord | None:
            if record is None or record.ended_at is not None:
                return None
            return record.model_copy(update={"rules": (), "ended_at": now, "last_seen": now})

        record = await self._change(key, finish)
        return SessionCheckResult(
            session_key=key,
            project=record.project if record else project_of(None, None),
            tag=record.tag if record else session_tag(request.session_id),
        )

    async def revoke(self, key: str, rule_id: str) -> SessionRecord | None:
        def drop(record: SessionRecord | None) -> SessionRecord | None:
            if record is None or not any(rule.rule_id == rule_id for rule in record.rules):
                return None
            return record.model_copy(
                update={"rules": tuple(r for r in record.rules if r.rule_id != rule_id)}
            )

        return await self._change(key, drop)

    async def revoke_rule(self, rule_id: str) -> tuple[SessionRecord, SessionRule] | None:
        """Revoke a rule by its id (the approval that created it names its session)."""
        approval = await load(self.approvals_kv, rule_id, ApprovalRecord)
        card = approval[0].claude_code if approval else None
        if card is None:
            return None
        loaded = await load(self.sessions_kv, card.session_key, SessionRecord)
        rule = next((r for r in loaded[0].rules if r.rule_id == rule_id), None) if loaded else None
        if rule is None:
            return None
        updated = await self.revoke(card.session_key, rule_id)
        return (updated, rule) if updated is not None else None

    async def with_rules(self) -> list[SessionRecord]:
        """Sessions that hold rules (for /rules). The bucket's TTL bounds how many exist."""
        found: list[SessionRecord] = []
        for key in await self.sessions_kv.keys(">"):
            loaded = await load(self.sessions_kv, key, SessionRecord)
            if loaded and loaded[0].rules and loaded[0].ended_at is None:
                found.append(loaded[0])
        return sorted(found, key=lambda record: record.last_seen, reverse=True)
