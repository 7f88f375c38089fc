"""CCTelegram notifier: the Telegram bridge."""
