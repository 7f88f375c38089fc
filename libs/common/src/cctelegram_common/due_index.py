"""The approvals' due-time index on NATS, and the one-time upgrade of the old approvals layout.

Each open approval has one scheduled message on ``cctg.approvals.due.<id>`` in
``CCTG_APPROVAL_DUE`` (NATS message schedules, server 2.12+). At the approval's expiry the
server itself publishes an ``ApprovalDue`` on ``cctg.approvals.timeout.<id>`` and removes the
schedule; a durable consumer hands it to exactly one events replica. A decided approval's
schedule is purged. So the expiry work is proportional to what falls due, not to history,
and no process keeps a list of approvals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalDue, ApprovalRecord
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import KvConflictError, kv_keys, kv_put_with_ttl, stream_subjects

log = get_logger(__name__)

# The fired ApprovalDue is kept this long (the consumer acks it within a second; the TTL only
# cleans up after an events service that was down for a day).
TIMEOUT_MESSAGE_TTL_S = 24 * 3600
# Stream metadata recording that the approvals bucket has the current layout.
LAYOUT_METADATA_KEY = "cctg_layout"
APPROVALS_LAYOUT = "2"


def _schedule_at(when: datetime) -> str:
    """``@at`` in RFC 3339 UTC with milliseconds (what nats-server parses)."""
    moment = when.astimezone(UTC)
    return "@at " + moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def schedule_expiry(js: JetStreamContext, approval_id: str, expires_at: datetime) -> None:
    """Store (or replace) the approval's schedule; a past time fires at once."""
    due = ApprovalDue(approval_id=approval_id, expires_at=expires_at)
    await js.publish(
        subjects.approval_due_subject(approval_id),
        due.model_dump_json().encode(),
        stream=subjects.STREAM_APPROVAL_DUE,
        headers={
            "Nats-Schedule": _schedule_at(expires_at),
            "Nats-Schedule-Target": subjects.approval_timeout_subject(approval_id),
            "Nats-Schedule-TTL": f"{TIMEOUT_MESSAGE_TTL_S}s",
        },
    )


async def unschedule_expiry(js: JetStreamContext, approval_id: str) -> None:
    """Take a decided approval out of the index. An empty message with a one-second TTL
    replaces the schedule (one message per subject) and then removes itself: no purge API
    call, which services' NATS users may not make."""
    await js.publish(
        subjects.approval_due_subject(approval_id),
        b"",
        stream=subjects.STREAM_APPROVAL_DUE,
        msg_ttl=1,
    )


async def scheduled_ids(js: JetStreamContext) -> list[str]:
    """Ids of the approvals that have a schedule (the open ones): the stream's subjects."""
    prefix = subjects.approval_due_subject("")
    found = await stream_subjects(js, subjects.STREAM_APPROVAL_DUE, subjects.APPROVAL_DUE_ALL)
    return [subject.removeprefix(prefix) for subject in found]


async def upgrade_approvals(js: JetStreamContext, history_s: float) -> int:
    """Bring approvals written by the previous layout (a scan every second, no per-key TTL)
    into this one, once: every open approval gets its schedule, every decided one its
    retention TTL from its decision (or is removed when that time has passed). Idempotent and
    safe on several processes at once. Returns how many records it touched."""
    stream = f"KV_{subjects.KV_APPROVALS}"
    info = await js.stream_info(stream)
    if (info.config.metadata or {}).get(LAYOUT_METADATA_KEY) == APPROVALS_LAYOUT:
        return 0
    bucket = await js.key_value(subjects.KV_APPROVALS)
    now = utc_now()
    touched = 0
    # Every key from the subject list, each read on its own: a watch could end before a
    # record already on its way was handed over, and that approval would never expire.
    for key in await kv_keys(bucket):
        try:
            entry = await bucket.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            continue
        if not entry.value or entry.revision is None:
            continue
        try:
            record = ApprovalRecord.model_validate_json(entry.value)
        except ValueError:
            continue
        touched += 1
        if record.is_open:
            await schedule_expiry(js, record.approval_id, record.expires_at)
            continue
        keep_until = (record.decided_at or record.created_at) + timedelta(seconds=history_s)
        remaining_s = (keep_until - now).total_seconds()
        if remaining_s < 1:
            await js.purge_stream(stream, subject=f"$KV.{subjects.KV_APPROVALS}.{key}")
            continue
        try:
            await kv_put_with_ttl(
                js,
                subjects.KV_APPROVALS,
                key,
                entry.value,
                remaining_s,
                expected_revision=entry.revision,
            )
        except (KvConflictError, nats.js.errors.APIError):
            continue  # changed meanwhile: the running service wrote it with its TTL
    info = await js.stream_info(stream)
    info.config.metadata = {**(info.config.metadata or {}), LAYOUT_METADATA_KEY: APPROVALS_LAYOUT}
    await js.update_stream(info.config)
    log.info("approvals_layout_upgraded", records=touched)
    return touched
