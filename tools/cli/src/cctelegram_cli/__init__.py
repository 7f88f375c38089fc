"""The cctelegram command: local runtime, stdio proxy, key management, provisioning."""
