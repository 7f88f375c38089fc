"""CCTelegram bridge-manager: status and control of the delivery fleet."""
