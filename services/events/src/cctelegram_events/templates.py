"""One template per event type: emoji, label, default severity and the data fields it shows."""

from __future__ import annotations

from dataclasses import dataclass

from cctelegram_common.contracts.event_types import CATEGORY_OF, EventType, describe
from cctelegram_common.contracts.events import Severity
from cctelegram_common.contracts.tools import TemplateCatalogue, TemplateInfo

T = EventType
S = Severity


@dataclass(frozen=True)
class Template:
    """How one event type looks: ``fields`` are the ``data`` keys that matter, in order."""

    emoji: str
    label: str
    severity: Severity
    fields: tuple[str, ...]


_TASK = ("status", "duration_ms", "results", "files_affected", "error_message")
_CODE = ("language", "file_path", "files_affected", "results", "duration_ms")
_FILE = ("file_path", "files_affected", "language")
_BUILD = ("status", "exit_code", "duration_ms", "error_message", "command")
_TESTS = ("test_count", "tests_passed", "coverage_percentage", "duration_ms", "error_message")
_GIT = ("branch_name", "commit_hash", "files_affected", "url")
_SYSTEM = ("severity", "memory_usage_mb", "cpu_usage_percent", "error_message", "status")
_NOTE = ("status", "priority", "url", "tags")

TEMPLATES: dict[EventType, Template] = {
    T.TASK_COMPLETION: Template("✅", "Task completed", S.LOW, _TASK),
    T.TASK_STARTED: Template("🚀", "Task started", S.LOW, _TASK),
    T.TASK_FAILED: Template("❌", "Task failed", S.HIGH, ("error_message", "exit_code", *_TASK)),
    T.TASK_PROGRESS: Template("⏳", "Task progress", S.LOW, ("progress", "status", "results")),
    T.TASK_CANCELLED: Template("🚫", "Task cancelled", S.MEDIUM, _TASK),
    T.CODE_GENERATION: Template("🧬", "Code generated", S.LOW, _CODE),
    T.CODE_ANALYSIS: Template("🔍", "Code analysis", S.LOW, _CODE),
    T.CODE_REFACTORING: Template("🛠️", "Refactoring", S.LOW, _CODE),
    T.CODE_REVIEW: Template("👀", "Code review", S.LOW, (*_CODE, "url")),
    T.CODE_TESTING: Template("🧪", "Code testing", S.LOW, _TESTS),
    T.CODE_DEPLOYMENT: Template("🚢", "Deployment", S.MEDIUM, ("status", "url", *_BUILD)),
    T.FILE_CREATED: Template("📄", "File created", S.LOW, _FILE),
    T.FILE_MODIFIED: Template("📝", "File modified", S.LOW, _FILE),
    T.FILE_DELETED: Template("🗑️", "File deleted", S.LOW, _FILE),
    T.DIRECTORY_CREATED: Template("📁", "Directory created", S.LOW, _FILE),
    T.DIRECTORY_DELETED: Template("🗂️", "Directory deleted", S.LOW, _FILE),
    T.BUILD_STARTED: Template("🏗️", "Build started", S.LOW, _BUILD),
    T.BUILD_COMPLETED: Template("🏁", "Build completed", S.LOW, _BUILD),
    T.BUILD_FAILED: Template("💥", "Build failed", S.HIGH, _BUILD),
    T.TEST_SUITE_RUN: Template("🧪", "Test suite run", S.LOW, _TESTS),
    T.TEST_PASSED: Template("🟢", "Tests passed", S.LOW, _TESTS),
    T.TEST_FAILED: Template("🔴", "Tests failed", S.HIGH, _TESTS),
    T.LINT_CHECK: Template("🧹", "Lint check", S.LOW, ("status", "results", "files_affected")),
    T.TYPE_CHECK: Template("🔤", "Type check", S.LOW, ("status", "results", "files_affected")),
    T.GIT_COMMIT: Template("📌", "Commit", S.LOW, _GIT),
    T.GIT_PUSH: Template("⬆️", "Push", S.LOW, _GIT),
    T.GIT_MERGE: Template("🔀", "Merge", S.LOW, _GIT),
    T.GIT_BRANCH: Template("🌿", "Branch", S.LOW, _GIT),
    T.GIT_TAG: Template("🏷️", "Tag", S.LOW, _GIT),
    T.PULL_REQUEST_CREATED: Template("📬", "Pull request opened", S.LOW, _GIT),
    T.PULL_REQUEST_MERGED: Template("🎉", "Pull request merged", S.LOW, _GIT),
    T.SYSTEM_HEALTH: Template("🩺", "System health", S.LOW, _SYSTEM),
    T.PERFORMANCE_ALERT: Template(
        "⚡", "Performance alert", S.MEDIUM, ("current_value", "threshold", *_SYSTEM)
    ),
    T.SECURITY_ALERT: Template("🛡️", "Security alert", S.CRITICAL, _SYSTEM),
    T.ERROR_OCCURRED: Template("🚨", "Error", S.HIGH, ("error_message", "exit_code", *_SYSTEM)),
    T.RESOURCE_USAGE: Template("📊", "Resource usage", S.LOW, _SYSTEM),
    T.APPROVAL_REQUEST: Template("🙋", "Approval needed", S.HIGH, ("approval_prompt", "options")),
    T.USER_RESPONSE: Template("💬", "User response", S.LOW, ("status", "results")),
    T.COMMAND_EXECUTED: Template("⌨️", "Command executed", S.LOW, ("command", *_BUILD[1:])),
    T.PROGRESS_UPDATE: Template("📈", "Progress", S.LOW, ("progress", "status", "results")),
    T.STATUS_CHANGE: Template("🔄", "Status change", S.LOW, ("status", "priority")),
    T.ALERT_NOTIFICATION: Template("⚠️", "Alert", S.HIGH, ("severity", *_NOTE)),
    T.INFO_NOTIFICATION: Template("\u2139\ufe0f", "Info", S.LOW, _NOTE),
    T.API_CALL: Template("🔌", "API call", S.LOW, ("url", "status", "duration_ms")),
    T.WEBHOOK_RECEIVED: Template("🪝", "Webhook received", S.LOW, ("url", "status")),
    T.SERVICE_INTEGRATION: Template("🔗", "Service integration", S.LOW, ("status", "url")),
    T.CUSTOM_EVENT: Template("✨", "Event", S.LOW, _NOTE),
}

# Named templates the original advertised as a resource (cctelegram://event-templates).
NAMED_TEMPLATES: dict[str, EventType] = {
    "task-complete": T.TASK_COMPLETION,
    "build-success": T.BUILD_COMPLETED,
    "build-failure": T.BUILD_FAILED,
    "performance-warning": T.PERFORMANCE_ALERT,
    "approval-needed": T.APPROVAL_REQUEST,
    "security-alert": T.SECURITY_ALERT,
}

# Event types that end a task's live status card (a fresh notification is sent then).
TASK_TERMINAL: frozenset[EventType] = frozenset(
    {T.TASK_COMPLETION, T.TASK_FAILED, T.TASK_CANCELLED}
)
# Event types that update a task's live status card in place.
TASK_LIVE: frozenset[EventType] = frozenset({T.TASK_STARTED, T.TASK_PROGRESS, T.PROGRESS_UPDATE})

SEVERITY_BADGE: dict[Severity, str] = {
    S.LOW: "🟢 low",
    S.MEDIUM: "🟡 medium",
    S.HIGH: "🟠 high",
    S.CRITICAL: "🔴 critical",
}

FIELD_LABELS: dict[str, str] = {
    "duration_ms": "Duration",
    "files_affected": "Files",
    "error_message": "Error",
    "exit_code": "Exit code",
    "file_path": "File",
    "commit_hash": "Commit",
    "branch_name": "Branch",
    "test_count": "Tests",
    "tests_passed": "Passed",
    "coverage_percentage": "Coverage",
    "memory_usage_mb": "Memory",
    "cpu_usage_percent": "CPU",
    "current_value": "Current",
    "approval_prompt": "Prompt",
    "url": "Link",
}


def template_for(event_type: EventType) -> Template:
    return TEMPLATES[event_type]


def catalogue() -> TemplateCatalogue:
    """Every template as data (the ``cctelegram://event-templates`` resource)."""
    named = {event_type: name for name, event_type in NAMED_TEMPLATES.items()}
    rows = [
        TemplateInfo(
            type=event_type,
            name=named.get(event_type),
            category=CATEGORY_OF[event_type],
            description=describe(event_type),
            emoji=template.emoji,
            label=template.label,
            default_severity=template.severity,
            fields=list(template.fields),
        )
        for event_type, template in TEMPLATES.items()
    ]
    return TemplateCatalogue(count=len(rows), templates=rows)
