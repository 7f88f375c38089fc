"""Task status: todos registered by agents and TaskMaster files read by the events service."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now


class TodoStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BLOCKED = "blocked"


class TaskSystem(StrEnum):
    CLAUDE_CODE = "claude-code"
    TASKMASTER = "taskmaster"
    BOTH = "both"


class TodoItem(Contract):
    id: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=2000)
    status: TodoStatus = TodoStatus.PENDING
    priority: str | None = Field(default=None, max_length=20)


class TodoList(Contract):
    """Value of ``cctg_state[todos.<client>.<session>]``."""

    client_id: str
    session_id: str
    todos: tuple[TodoItem, ...]
    updated_at: datetime = Field(default_factory=utc_now)


class RegisterTodosRequest(Contract):
    """RPC ``cctg.events.rpc.todos_register``: replace a session's todos."""

    client_id: str
    session_id: str = Field(default="default", min_length=1, max_length=100)
    todos: tuple[TodoItem, ...] = Field(max_length=100)


class RegisterTodosResult(Contract):
    """``register_claude_todos``: the original's result."""

    success: bool
    message: str
    registered_count: int
    session_id: str


class TaskStatusRequest(Contract):
    """RPC ``cctg.events.rpc.task_status`` and ``todo``."""

    client_id: str
    read_all: bool = False
    project_root: str | None = Field(default=None, max_length=1000)
    task_system: TaskSystem = TaskSystem.BOTH
    status_filter: TodoStatus | None = None
    summary_only: bool = False
    sections: tuple[str, ...] = ("completed", "current", "upcoming", "blocked")
    limit_completed: int = Field(default=5, ge=1, le=50)
    show_subtasks: bool = False


class TaskCounts(Contract):
    total: int = 0
    pending: int = 0
    in_progress: int = 0
    completed: int = 0
    blocked: int = 0
    completion_percent: float = 0.0


class TaskView(Contract):
    id: str
    title: str
    status: str
    source: str = Field(description="claude-code:<session> or taskmaster")
    priority: str | None = None
    subtasks: tuple["TaskView", ...] = ()


class TaskStatusResult(Contract):
    """``get_task_status``: task lists and counts per system."""

    success: bool = True
    task_system: TaskSystem
    claude_code: TaskCounts | None = None
    taskmaster: TaskCounts | None = None
    combined: TaskCounts
    tasks: tuple[TaskView, ...] = ()
    taskmaster_available: bool = False
    taskmaster_note: str | None = Field(default=None, description="Why it could not be read")
    extra: dict[str, Any] = Field(default_factory=dict)


class TodoResult(Contract):
    """``todo``: the formatted list plus the counts it was built from."""

    success: bool = True
    text: str = Field(description="The formatted todo list (plain text)")
    counts: TaskCounts
