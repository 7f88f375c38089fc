"""Response, task and mode tools through the gateway's tool functions → events RPCs on NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import time
from pathlib import Path

import pytest
from events_harness import EventsHarness
from faststream.nats import NatsBroker

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import ROLE_PERMISSIONS, Principal, Role
from cctelegram_common.contracts.modes import Mode, SetQuietHoursInput, SwitchModeInput
from cctelegram_common.contracts.tasks import TodoItem, TodoStatus
from cctelegram_common.contracts.tools import (
    ClearOldResponsesInput,
    GetTaskStatusInput,
    GetTelegramResponsesInput,
    ProcessPendingResponsesInput,
    RegisterClaudeTodosInput,
    SendApprovalRequestInput,
    TodoInput,
    WaitForApprovalInput,
)
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ToolContext, ToolError
from cctelegram_gateway.tools.approvals import send_approval_request, wait_for_approval
from cctelegram_gateway.tools.modes import (
    set_quiet_hours,
    switch_to_local_mode,
    switch_to_nomad_mode,
)
from cctelegram_gateway.tools.responses import (
    clear_old_responses,
    get_telegram_responses,
    process_pending_responses,
)
from cctelegram_gateway.tools.tasks import get_task_status, register_claude_todos, todo


def context(broker: NatsBroker, client_id: str, role: Role = Role.AGENT) -> ToolContext:
    principal = Principal(
        client_id=client_id, key_id=f"k-{client_id}", role=role, permissions=ROLE_PERMISSIONS[role]
    )
    return ToolContext(
        principal=principal, request_id="req", broker=broker, reads=EventsReadModels(broker)
    )


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    connection = NatsBroker(nats_url)
    await connection.connect()
    try:
        yield connection
    finally:
        await connection.stop()


async def test_press_becomes_a_response_only_its_owner_sees(
    events_harness: EventsHarness, broker: NatsBroker
) -> None:
    owner = context(broker, f"owner-{events_harness.users[0]}")
    other = context(broker, f"other-{events_harness.users[0]}")
    sent = await send_approval_request(
        owner, SendApprovalRequestInput(title="Run migrations?", description="db v42")
    )
    alice = events_harness.users[0]
    messages = await events_harness.tap.wait_for(
        lambda ms: any(m.approval_id == sent.approval_id and m.chat_id == alice for m in ms)
    )
    card = next(m for m in messages if m.approval_id == sent.approval_id and m.chat_id == alice)
    data = card.keyboard[0][0].callback_data  # type: ignore[index]
    waiting = asyncio.create_task(
        wait_for_approval(owner, WaitForApprovalInput(approval_id=sent.approval_id))
    )
    update_id = alice % 10**9
    press = InboundUpdate(
        update_id=update_id,
        update={
            "update_id": update_id,
            "callback_query": {
                "id": f"cq-{update_id}",
                "from": {"id": alice, "is_bot": False, "first_name": "A", "username": "alice"},
                "message": {"message_id": 5, "chat": {"id": alice, "type": "private"}},
                "data": data,
            },
        },
    )
    await events_harness.nc.jetstream().publish(
        subjects.TELEGRAM_UPDATES, press.model_dump_json().encode()
    )
    decided = await asyncio.wait_for(waiting, 60)
    assert decided.status.value == "approved"
    assert decided.approval.decided_by_username == "alice"

    # The response is recorded right after the decision: give it a moment.
    for _ in range(300):
        page = await get_telegram_responses(owner, GetTelegramResponsesInput(limit=5))
        if page.total:
            break
        await asyncio.sleep(0.05)
    assert page.total >= 1
    assert page.responses[0].approval_id == sent.approval_id
    assert page.responses[0].action == "approve"
    pending = await process_pending_responses(owner, ProcessPendingResponsesInput())
    assert pending.summary.pending_approvals >= 1
    assert (await get_telegram_responses(other, GetTelegramResponsesInput())).total == 0

    cleared = await clear_old_responses(owner, ClearOldResponsesInput(older_than_hours=1))
    assert cleared.deleted_count == 0  # the press is minutes old, not hours
    assert (await get_telegram_responses(owner, GetTelegramResponsesInput())).total >= 1


async def test_todos_taskmaster_and_modes(
    events_harness: EventsHarness, broker: NatsBroker, tmp_path: Path
) -> None:
    agent = context(broker, f"tasks-{events_harness.users[0]}")
    registered = await register_claude_todos(
        agent,
        RegisterClaudeTodosInput(
            todos=[
                TodoItem(id="1", content="write tests", status=TodoStatus.COMPLETED),
                TodoItem(id="2", content="ship", status=TodoStatus.IN_PROGRESS),
            ],
            session_id="s1",
        ),
    )
    assert registered.registered_count == 2
    tasks_file = tmp_path / ".taskmaster" / "tasks" / "tasks.json"
    tasks_file.parent.mkdir(parents=True)
    tasks_file.write_text(
        json.dumps({"master": {"tasks": [{"id": 1, "title": "plan", "status": "done"}]}})
    )
    status = await get_task_status(agent, GetTaskStatusInput(project_root=str(tmp_path)))
    assert status.taskmaster_available
    assert status.combined.total == 3
    assert status.combined.completed == 2
    escaped = await get_task_status(
        agent, GetTaskStatusInput(project_root=str(tmp_path / ".." / ".." / ".."))
    )
    assert not escaped.taskmaster_available
    text = (await todo(agent, TodoInput(project_root=str(tmp_path)))).text
    assert "write tests" in text
    assert "ship" in text

    local = await switch_to_local_mode(agent, SwitchModeInput())
    assert local.mode is Mode.LOCAL
    assert local.client_id == agent.principal.client_id  # the caller's own mode
    assert (await switch_to_nomad_mode(agent, SwitchModeInput())).mode is Mode.NOMAD
    # The default for everyone is an admin's to set.
    with pytest.raises(ToolError) as refused:
        await switch_to_nomad_mode(agent, SwitchModeInput(for_everyone=True))
    assert refused.value.status == 403
    assert "modes:default" in refused.value.message
    admin = context(broker, f"admin-{events_harness.users[0]}", Role.ADMIN)
    default = await switch_to_nomad_mode(admin, SwitchModeInput(for_everyone=True))
    assert (default.mode, default.client_id) == (Mode.NOMAD, None)

    quiet = await set_quiet_hours(
        agent, SetQuietHoursInput(start=time(22), end=time(7), timezone="Europe/Paris")
    )
    assert quiet.client_id == agent.principal.client_id
    assert quiet.quiet_hours is not None
    assert quiet.quiet_hours.timezone == "Europe/Paris"
    off = await set_quiet_hours(agent, SetQuietHoursInput(start=time(9), end=time(9)))
    assert off.quiet_hours is None
    with pytest.raises(ToolError):
        await set_quiet_hours(agent, SetQuietHoursInput(for_everyone=True))
