"""The security and control audit trail: one record per decision worth answering for later."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditRecord(Contract):
    """Subject ``cctg.audit.<service>.<action>`` on ``CCTG_AUDIT``.

    Never carries a key, a token or message text: ids, names and outcomes only.
    """

    service: str = Field(description="Who wrote the record: gateway, auth, events, bridge-manager")
    action: str = Field(
        description="What was attempted: auth.failed, permission.denied, rate_limited, "
        "key.created, key.revoked, key.rotated, bridge.control, approval.decided, ..."
    )
    outcome: AuditOutcome
    client_id: str | None = Field(default=None, description="The caller, when known")
    key_id: str | None = Field(default=None, description="The public id part of the key used")
    request_id: str | None = Field(default=None, description="Correlates with logs and replies")
    target: str | None = Field(
        default=None, description="What the action was about: a tool, key id, approval id"
    )
    reason: str | None = Field(
        default=None, max_length=300, description="Why, in a few words (no secrets)"
    )
    at: datetime = Field(default_factory=utc_now)
