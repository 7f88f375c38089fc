"""Task tools: register_claude_todos, get_task_status, todo (RPCs to the events service)."""

from __future__ import annotations

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.tasks import (
    RegisterTodosRequest,
    RegisterTodosResult,
    TaskStatusRequest,
    TaskStatusResult,
    TodoResult,
)
from cctelegram_common.contracts.tools import (
    GetTaskStatusInput,
    RegisterClaudeTodosInput,
    TodoInput,
)
from cctelegram_gateway.registry import ToolContext, registry
from cctelegram_gateway.tools.events import call_events


@registry.tool(
    "register_claude_todos",
    description="Store this session's todo list ({id, content, status} items) so /tasks and "
    "/todo in Telegram and get_task_status can show it.",
    permission=Permission.TASKS_WRITE,
)
async def register_claude_todos(
    ctx: ToolContext, params: RegisterClaudeTodosInput
) -> RegisterTodosResult:
    request = RegisterTodosRequest(
        client_id=ctx.principal.client_id,
        session_id=params.session_id,
        todos=tuple(params.todos),
    )
    return await call_events(ctx, subjects.EVENTS_RPC_TODOS_REGISTER, request, RegisterTodosResult)


def _status_request(ctx: ToolContext, **fields: object) -> TaskStatusRequest:
    return TaskStatusRequest.model_validate(
        {
            "client_id": ctx.principal.client_id,
            "read_all": ctx.principal.can(Permission.READ_ALL),
            **fields,
        }
    )


@registry.tool(
    "get_task_status",
    description="Task lists and counts from your registered todos and, when project_root is "
    "given and readable by the service, its TaskMaster .taskmaster/tasks/tasks.json.",
    permission=Permission.TASKS_READ,
    read_only=True,
)
async def get_task_status(ctx: ToolContext, params: GetTaskStatusInput) -> TaskStatusResult:
    request = _status_request(
        ctx,
        project_root=params.project_root,
        task_system=params.task_system,
        status_filter=params.status_filter,
        summary_only=params.summary_only,
    )
    return await call_events(ctx, subjects.EVENTS_RPC_TASK_STATUS, request, TaskStatusResult)


@registry.tool(
    "todo",
    description="A formatted todo list: completed / current / upcoming / blocked sections.",
    permission=Permission.TASKS_READ,
    read_only=True,
)
async def todo(ctx: ToolContext, params: TodoInput) -> TodoResult:
    request = _status_request(
        ctx,
        project_root=params.project_root,
        task_system=params.task_system,
        sections=tuple(params.sections),
        limit_completed=params.limit_completed,
        show_subtasks=params.show_subtasks,
    )
    return await call_events(ctx, subjects.EVENTS_RPC_TODO, request, TodoResult)
