"""An approval NATS removed after the history time answers 404 saying it left the history."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import nats
from starlette.testclient import TestClient

from cctelegram_common import subjects
from cctelegram_common.contracts.approvals import ApprovalRecord, ApprovalStatus
from cctelegram_common.contracts.base import utc_now


async def store_decided(nats_url: str, record: ApprovalRecord, ttl_s: float) -> None:
    """Write the record as the events service writes a decided one: with a per-key TTL."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await js.key_value(subjects.KV_APPROVALS)  # provisioned by the gateway's start
        await js.publish(
            f"$KV.{subjects.KV_APPROVALS}.{record.approval_id}",
            record.model_dump_json().encode(),
            msg_ttl=ttl_s,
        )
    finally:
        await nc.close()


def test_a_removed_approval_answers_404_saying_it_left_the_history(
    client: TestClient, keys, auth_stack
) -> None:
    now = utc_now()
    record = ApprovalRecord(
        approval_id=uuid.uuid4().hex,
        client_id="someone",
        title="Old decision",
        options=("Approve", "Deny"),
        approvers=(1,),
        status=ApprovalStatus.APPROVED,
        decided_at=now,
        expires_at=now + timedelta(minutes=5),
    )
    asyncio.run(store_decided(auth_stack.nats_url, record, ttl_s=1))
    headers = {"Authorization": f"Bearer {keys.admin}"}
    path = "/v1/tools/get_approval"
    kept = client.post(path, json={"approval_id": record.approval_id}, headers=headers)
    assert kept.status_code == 200
    assert kept.json()["status"] == "approved"
    for _ in range(50):
        gone = client.post(path, json={"approval_id": record.approval_id}, headers=headers)
        if gone.status_code == 404:
            break
        asyncio.run(asyncio.sleep(0.2))
    assert gone.status_code == 404
    error = gone.json()["error"]
    assert error["code"] == "not_found"
    assert error["field"] == "approval_id"
    assert "left the history" in error["message"]
