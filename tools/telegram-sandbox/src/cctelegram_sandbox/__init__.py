"""Telegram sandbox: a faithful local Bot API emulator with a chat view."""
