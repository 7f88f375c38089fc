"""Writing audit records to ``CCTG_AUDIT``: one helper every service shares."""

from __future__ import annotations

from faststream.nats import NatsBroker

from cctelegram_common import subjects
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.logging import get_logger

log = get_logger(__name__)


async def publish_audit(broker: NatsBroker, record: AuditRecord, *, timeout_s: float = 2.0) -> bool:
    """Store one record (JetStream, PubAck awaited). Returns False instead of raising.

    Auditing must never turn a decision into an error for the caller; a failure is logged
    (without the record's contents beyond its action) so operators can see the gap.
    """
    try:
        await broker.publish(
            record,
            subjects.audit_subject(record.service, record.action),
            stream=subjects.STREAM_AUDIT,
            timeout=timeout_s,
        )
    except Exception as error:
        log.warning("audit_publish_failed", action=record.action, error=type(error).__name__)
        return False
    return True
