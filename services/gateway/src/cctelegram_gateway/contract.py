"""What the gateway does on NATS: the one declaration its subscriptions and the AsyncAPI
document are made from (see ``cctelegram_common.messaging``). The gateway answers no RPC:
it calls auth's, events' and bridge-manager's (declared there, with the gateway as caller)
and publishes the commands events consumes (declared as events' consumers)."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.audit import AUDIT_TRAIL
from cctelegram_common.contracts.approvals import ApprovalRecord
from cctelegram_common.contracts.auth import KeyChanged
from cctelegram_common.messaging import Listen, ServiceContract, Watch

CONTRACT = ServiceContract(
    service="gateway",
    listens=(
        Listen(
            subjects.AUTH_KEY_CHANGED,
            KeyChanged,
            ("auth",),
            "A key was revoked or changed: every gateway drops it from its cache.",
        ),
    ),
    watches=(
        Watch(
            f"$KV.{subjects.KV_APPROVALS}.*",
            "wait_for_approval and the Claude Code permission prompt: one approval's record, "
            "watched until it is decided (events' read model, through readmodels.py).",
            ApprovalRecord,
        ),
    ),
    publishes=(AUDIT_TRAIL,),
)
