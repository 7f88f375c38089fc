"""Task status: todos agents register (per client and session) and TaskMaster task files.

A TaskMaster file is read only at ``<project_root>/.taskmaster/tasks/tasks.json``: the root
must be absolute, the resolved file must still lie under the resolved root (no ``..`` or
symlink escapes), must be exactly that name, a regular file, and at most 5 MB. With
``EVENTS_TASK_ROOT_ALLOWLIST`` set, the root must also lie under one of those directories.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cctelegram_common.contracts.tasks import (
    RegisterTodosRequest,
    RegisterTodosResult,
    TaskCounts,
    TaskStatusRequest,
    TaskStatusResult,
    TaskSystem,
    TaskView,
    TodoList,
    TodoResult,
    TodoStatus,
)
from cctelegram_events.ports import Clock, KvStore, key_part, load

TODOS_PREFIX = "todos."
TASKMASTER_RELATIVE = Path(".taskmaster") / "tasks" / "tasks.json"
MAX_TASKMASTER_BYTES = 5 * 1024 * 1024

_STATUS_ALIASES = {
    "done": TodoStatus.COMPLETED,
    "completed": TodoStatus.COMPLETED,
    "complete": TodoStatus.COMPLETED,
    "in-progress": TodoStatus.IN_PROGRESS,
    "in_progress": TodoStatus.IN_PROGRESS,
    "review": TodoStatus.IN_PROGRESS,
    "active": TodoStatus.IN_PROGRESS,
    "blocked": TodoStatus.BLOCKED,
    "deferred": TodoStatus.BLOCKED,
}


def normalise_status(raw: object) -> TodoStatus:
    return _STATUS_ALIASES.get(str(raw).lower(), TodoStatus.PENDING)


def taskmaster_file(project_root: str, allowlist: tuple[Path, ...] = ()) -> Path:
    """The one file we may read for this root, or ValueError saying why not."""
    root = Path(project_root)
    if not root.is_absolute():
        raise ValueError("project_root must be an absolute path")
    try:
        resolved_root = root.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError("project_root is not readable by the events service") from None
    if allowlist and not any(
        resolved_root.is_relative_to(allowed.resolve()) for allowed in allowlist
    ):
        raise ValueError("project_root is outside the allowed task roots")
    candidate = resolved_root / TASKMASTER_RELATIVE
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValueError("no .taskmaster/tasks/tasks.json under project_root") from None
    if (
        not resolved.is_relative_to(resolved_root)
        or resolved != candidate
        or resolved.name != "tasks.json"
        or not resolved.is_file()
    ):
        raise ValueError("tasks.json must be a regular file inside project_root")
    if resolved.stat().st_size > MAX_TASKMASTER_BYTES:
        raise ValueError("tasks.json is larger than 5 MB")
    return resolved


def _task_views(raw_tasks: list[Any], source: str, depth: int = 0) -> list[TaskView]:
    views: list[TaskView] = []
    for raw in raw_tasks[:1000]:
        if not isinstance(raw, dict):
            continue
        subtasks = raw.get("subtasks") if depth == 0 else None
        views.append(
            TaskView(
                id=str(raw.get("id", "?"))[:50],
                title=str(raw.get("title") or raw.get("content") or "")[:300],
                status=normalise_status(raw.get("status", "pending")).value,
                source=source,
                priority=str(raw["priority"])[:20] if raw.get("priority") else None,
                subtasks=tuple(_task_views(subtasks, source, depth + 1))
                if isinstance(subtasks, list)
                else (),
            )
        )
    return views


def read_taskmaster(project_root: str, allowlist: tuple[Path, ...] = ()) -> list[TaskView]:
    """TaskMaster tasks (plain ``{"tasks": [...]}`` or tagged ``{"<tag>": {"tasks": [...]}}``)."""
    path = taskmaster_file(project_root, allowlist)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValueError("tasks.json is not readable JSON") from None
    if isinstance(document, dict) and isinstance(document.get("tasks"), list):
        return _task_views(document["tasks"], "taskmaster")
    if isinstance(document, dict):
        tagged = document.get("master") or next(
            (v for v in document.values() if isinstance(v, dict) and "tasks" in v), None
        )
        if isinstance(tagged, dict) and isinstance(tagged.get("tasks"), list):
            return _task_views(tagged["tasks"], "taskmaster")
    raise ValueError("tasks.json has no task list")


def count(tasks: list[TaskView]) -> TaskCounts:
    by_status = dict.fromkeys(TodoStatus, 0)
    for task in tasks:
        by_status[TodoStatus(task.status)] += 1
    total = len(tasks)
    done = by_status[TodoStatus.COMPLETED]
    return TaskCounts(
        total=total,
        pending=by_status[TodoStatus.PENDING],
        in_progress=by_status[TodoStatus.IN_PROGRESS],
        completed=done,
        blocked=by_status[TodoStatus.BLOCKED],
        completion_percent=round(100.0 * done / total, 1) if total else 0.0,
    )


@dataclass
class TaskService:
    state_kv: KvStore
    clock: Clock
    root_allowlist: tuple[Path, ...] = ()
    # A session's todo list is kept this long after its last registration (per-key TTL).
    history_s: float = 30 * 24 * 3600.0

    async def register(self, request: RegisterTodosRequest) -> RegisterTodosResult:
        todo_list = TodoList(
            client_id=request.client_id,
            session_id=request.session_id,
            todos=request.todos,
            updated_at=self.clock(),
        )
        key = f"{TODOS_PREFIX}{key_part(request.client_id)}.{key_part(request.session_id)}"
        await self.state_kv.put(key, todo_list.model_dump_json().encode(), ttl_s=self.history_s)
        return RegisterTodosResult(
            success=True,
            message=f"Registered {len(request.todos)} todo(s) for session {request.session_id}",
            registered_count=len(request.todos),
            session_id=request.session_id,
        )

    async def claude_code_tasks(self, client_id: str, read_all: bool) -> list[TaskView]:
        pattern = f"{TODOS_PREFIX}>" if read_all else f"{TODOS_PREFIX}{key_part(client_id)}.>"
        views: list[TaskView] = []
        for key in sorted(await self.state_kv.keys(pattern)):
            loaded = await load(self.state_kv, key, TodoList)
            if loaded is None:
                continue
            todo_list = loaded[0]
            views += [
                TaskView(
                    id=item.id,
                    title=item.content,
                    status=item.status.value,
                    source=f"claude-code:{todo_list.session_id}",
                    priority=item.priority,
                )
                for item in todo_list.todos
            ]
        return views

    async def status(self, request: TaskStatusRequest) -> TaskStatusResult:
        claude: list[TaskView] = []
        master: list[TaskView] = []
        note: str | None = None
        available = False
        if request.task_system in (TaskSystem.CLAUDE_CODE, TaskSystem.BOTH):
            claude = await self.claude_code_tasks(request.client_id, request.read_all)
        if request.task_system in (TaskSystem.TASKMASTER, TaskSystem.BOTH):
            if request.project_root:
                try:
                    master = read_taskmaster(request.project_root, self.root_allowlist)
                    available = True
                except ValueError as error:
                    note = str(error)
            else:
                note = "no project_root given"
        everything = claude + master
        shown = everything
        if request.status_filter is not None:
            shown = [task for task in everything if task.status == request.status_filter.value]
        return TaskStatusResult(
            task_system=request.task_system,
            claude_code=count(claude) if request.task_system is not TaskSystem.TASKMASTER else None,
            taskmaster=count(master) if available else None,
            combined=count(everything),
            tasks=() if request.summary_only else tuple(shown[:500]),
            taskmaster_available=available,
            taskmaster_note=note,
        )

    async def todo(self, request: TaskStatusRequest) -> TodoResult:
        result = await self.status(request.model_copy(update={"summary_only": False}))
        return TodoResult(text=format_todo(result, request), counts=result.combined)


_SECTIONS = {
    "completed": ("✅ Completed", TodoStatus.COMPLETED),
    "current": ("🔄 Current", TodoStatus.IN_PROGRESS),
    "upcoming": ("⏭️ Upcoming", TodoStatus.PENDING),
    "blocked": ("🚫 Blocked", TodoStatus.BLOCKED),
}


def format_todo(result: TaskStatusResult, request: TaskStatusRequest) -> str:
    """The ``todo`` tool's text (plain text; Telegram replies escape it)."""
    counts = result.combined
    lines = [f"📋 Todo — {counts.total} task(s), {counts.completion_percent:g}% done"]
    for section in request.sections:
        if section not in _SECTIONS:
            continue
        heading, status = _SECTIONS[section]
        tasks = [task for task in result.tasks if task.status == status.value]
        if status is TodoStatus.COMPLETED:
            tasks = tasks[-request.limit_completed :]
        if not tasks:
            continue
        lines.append("")
        lines.append(f"{heading} ({len(tasks)})")
        for task in tasks[:50]:
            lines.append(f"  • {task.title} [{task.source}]")
            if request.show_subtasks:
                lines += [f"      ◦ {sub.title} ({sub.status})" for sub in task.subtasks[:20]]
    if result.taskmaster_note and request.task_system is not TaskSystem.CLAUDE_CODE:
        lines.append("")
        lines.append(f"(TaskMaster: {result.taskmaster_note})")
    return "\n".join(lines)
