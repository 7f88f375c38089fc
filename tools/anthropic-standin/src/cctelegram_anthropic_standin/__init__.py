"""Scripted stand-in of the Anthropic Messages API and a runner for the real Claude Code CLI.

Test tool only: never part of a service image.
"""

from .app import RecordedRequest
from .scripts import Text, ToolResult, ToolUse, Turn, marker
from .server import Standin

__all__ = ["RecordedRequest", "Standin", "Text", "ToolResult", "ToolUse", "Turn", "marker"]
