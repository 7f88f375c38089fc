"""CCTelegram auth service: API keys, roles, audit."""
