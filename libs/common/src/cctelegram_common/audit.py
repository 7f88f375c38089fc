"""Writing audit records to ``CCTG_AUDIT``: one helper every service shares."""

from __future__ import annotations

import uuid

from faststream.nats import NatsBroker

from cctelegram_common import subjects
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.logging import get_logger
from cctelegram_common.messaging import Publish
from cctelegram_common.nats import jetstream, publish_to_stream

log = get_logger(__name__)

# What every service that audits declares in its contract.
AUDIT_TRAIL = Publish(
    f"{subjects.PREFIX}.audit.{{service}}.{{action}}",
    AuditRecord,
    "event",
    "The security and control audit trail: who, what, outcome, request id; no secrets.",
    subjects.STREAM_AUDIT,
    consumers=("operators",),
)


async def publish_audit(broker: NatsBroker, record: AuditRecord, *, timeout_s: float = 2.0) -> bool:
    """Store one record (JetStream, PubAck awaited). Returns False instead of raising.

    Auditing must never turn a decision into an error for the caller; a failure is logged
    (without the record's contents beyond its action) so operators can see the gap.
    """
    try:
        await publish_to_stream(
            jetstream(broker),
            subjects.audit_subject(record.service, record.action),
            record,
            msg_id=uuid.uuid4().hex,
            stream=subjects.STREAM_AUDIT,
            timeout_s=timeout_s,
        )
    except Exception as error:
        log.warning("audit_publish_failed", action=record.action, error=type(error).__name__)
        return False
    return True
