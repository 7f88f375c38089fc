"""CCTelegram events service: event types, rendering, approvals, responses."""
