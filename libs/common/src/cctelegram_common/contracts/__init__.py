"""Payload models of every command, event and RPC the services exchange over NATS."""
