"""Telegram sandbox: a faithful local Bot API emulator with a chat view."""

from .app import SandboxApp, create_app
from .config import ControllableClock, ManualClock, SandboxConfig, SystemClock

__all__ = [
    "ControllableClock",
    "ManualClock",
    "SandboxApp",
    "SandboxConfig",
    "SystemClock",
    "create_app",
]
