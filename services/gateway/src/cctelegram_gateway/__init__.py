"""CCTelegram gateway: MCP and REST front door."""
