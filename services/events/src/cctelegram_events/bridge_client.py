"""/bridge and /restart: ask bridge-manager over RPC and put the answer in words."""

from __future__ import annotations

from typing import Protocol

from faststream.nats import NatsBroker

from cctelegram_common import subjects
from cctelegram_common.contracts.bridge import (
    BridgeControlRequest,
    BridgeControlResult,
    BridgeStatus,
    BridgeStatusRequest,
)
from cctelegram_common.nats import RpcFailedError, rpc_call

UNAVAILABLE = "Bridge status unavailable right now."


class BridgeClient(Protocol):
    async def status_text(self, requested_by: str) -> str: ...
    async def restart_text(self, requested_by: str) -> str: ...


def describe_status(status: BridgeStatus) -> str:
    state = "running" if status.running else "paused" if status.paused else "not running"
    lines = [
        f"🌉 Bridge: {state} ({status.health.value})",
        f"Instances: {status.live_instances} · queue: {status.queue.depth}",
        f"Sent: {status.metrics.telegram_messages_sent} · errors: {status.metrics.error_count}",
    ]
    if status.last_event_time is not None:
        lines.append(f"Last delivery: {status.last_event_time:%Y-%m-%d %H:%M:%S} UTC")
    # Several bots: one line each, summed over the instances serving it.
    bots: dict[str, tuple[int, int, int]] = {}
    for instance in status.instances:
        for bot in instance.bots:
            sent, failed, limited = bots.get(bot.name, (0, 0, 0))
            bots[bot.name] = (
                sent + bot.sent_count,
                failed + bot.failed_count,
                limited + bot.rate_limited_count,
            )
    lines += [
        f"🤖 {name}: sent {sent} · errors {failed} · 429s {limited}"
        for name, (sent, failed, limited) in sorted(bots.items())
    ]
    lines += [f"⚠️ {reason.message}" for reason in status.health_reasons[:5]]
    return "\n".join(lines)


class RpcBridgeClient:
    def __init__(self, broker: NatsBroker, timeout_s: float = 3.0) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def status_text(self, requested_by: str) -> str:
        try:
            status = await rpc_call(
                self.broker,
                subjects.BRIDGE_RPC_STATUS,
                BridgeStatusRequest(requested_by=requested_by),
                BridgeStatus,
                timeout_s=self.timeout_s,
            )
        except (RpcFailedError, ValueError):
            return UNAVAILABLE
        return describe_status(status)

    async def restart_text(self, requested_by: str) -> str:
        try:
            result = await rpc_call(
                self.broker,
                subjects.BRIDGE_RPC_RESTART,
                BridgeControlRequest(requested_by=requested_by, via="telegram"),
                BridgeControlResult,
                # A supervised rolling restart takes 6-8 s under load; stay under the updates
                # consumer's 30 s ack wait so the command is never redelivered (and run twice).
                timeout_s=max(self.timeout_s, 25.0),
            )
        except RpcFailedError as error:
            return f"Restart failed: {error.error.message}"
        except ValueError:
            return "Restart failed: unexpected answer from the bridge manager"
        return ("🔄 " if result.success else "⚠️ ") + result.message
