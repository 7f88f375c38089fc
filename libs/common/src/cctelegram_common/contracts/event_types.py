"""The 48 CCTelegram event types, their categories and descriptions."""

from enum import StrEnum


class EventType(StrEnum):
    """Every event type the original CCTelegram defined (all are accepted here)."""

    # Task management
    TASK_COMPLETION = "task_completion"
    TASK_STARTED = "task_started"
    TASK_FAILED = "task_failed"
    TASK_PROGRESS = "task_progress"
    TASK_CANCELLED = "task_cancelled"
    # Code operations
    CODE_GENERATION = "code_generation"
    CODE_ANALYSIS = "code_analysis"
    CODE_REFACTORING = "code_refactoring"
    CODE_REVIEW = "code_review"
    CODE_TESTING = "code_testing"
    CODE_DEPLOYMENT = "code_deployment"
    # File system
    FILE_CREATED = "file_created"
    FILE_MODIFIED = "file_modified"
    FILE_DELETED = "file_deleted"
    DIRECTORY_CREATED = "directory_created"
    DIRECTORY_DELETED = "directory_deleted"
    # Build and development
    BUILD_STARTED = "build_started"
    BUILD_COMPLETED = "build_completed"
    BUILD_FAILED = "build_failed"
    TEST_SUITE_RUN = "test_suite_run"
    TEST_PASSED = "test_passed"
    TEST_FAILED = "test_failed"
    LINT_CHECK = "lint_check"
    TYPE_CHECK = "type_check"
    # Git
    GIT_COMMIT = "git_commit"
    GIT_PUSH = "git_push"
    GIT_MERGE = "git_merge"
    GIT_BRANCH = "git_branch"
    GIT_TAG = "git_tag"
    PULL_REQUEST_CREATED = "pull_request_created"
    PULL_REQUEST_MERGED = "pull_request_merged"
    # System monitoring
    SYSTEM_HEALTH = "system_health"
    PERFORMANCE_ALERT = "performance_alert"
    SECURITY_ALERT = "security_alert"
    ERROR_OCCURRED = "error_occurred"
    RESOURCE_USAGE = "resource_usage"
    # User interaction
    APPROVAL_REQUEST = "approval_request"
    USER_RESPONSE = "user_response"
    COMMAND_EXECUTED = "command_executed"
    # Notifications
    PROGRESS_UPDATE = "progress_update"
    STATUS_CHANGE = "status_change"
    ALERT_NOTIFICATION = "alert_notification"
    INFO_NOTIFICATION = "info_notification"
    # Integration
    API_CALL = "api_call"
    WEBHOOK_RECEIVED = "webhook_received"
    SERVICE_INTEGRATION = "service_integration"
    # Custom
    CUSTOM_EVENT = "custom_event"


_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Task Management": (
        "task_completion",
        "task_started",
        "task_failed",
        "task_progress",
        "task_cancelled",
    ),
    "Code Operations": (
        "code_generation",
        "code_analysis",
        "code_refactoring",
        "code_review",
        "code_testing",
        "code_deployment",
    ),
    "File System": (
        "file_created",
        "file_modified",
        "file_deleted",
        "directory_created",
        "directory_deleted",
    ),
    "Build & Development": (
        "build_started",
        "build_completed",
        "build_failed",
        "test_suite_run",
        "test_passed",
        "test_failed",
        "lint_check",
        "type_check",
    ),
    "Git Operations": (
        "git_commit",
        "git_push",
        "git_merge",
        "git_branch",
        "git_tag",
        "pull_request_created",
        "pull_request_merged",
    ),
    "System Monitoring": (
        "system_health",
        "performance_alert",
        "security_alert",
        "error_occurred",
        "resource_usage",
    ),
    "User Interaction": ("approval_request", "user_response", "command_executed"),
    "Notifications": (
        "progress_update",
        "status_change",
        "alert_notification",
        "info_notification",
    ),
    "Integration": ("api_call", "webhook_received", "service_integration"),
    "Custom": ("custom_event",),
}

CATEGORY_OF: dict[EventType, str] = {
    EventType(name): category for category, names in _CATEGORIES.items() for name in names
}


def describe(event_type: EventType) -> str:
    """A one-line human description, e.g. ``build_failed`` → "Build failed"."""
    return event_type.value.replace("_", " ").capitalize()
