"""Shared contracts (payload models, subjects, streams) and plumbing of the CCTelegram suite."""

__version__ = "0.1.0"
