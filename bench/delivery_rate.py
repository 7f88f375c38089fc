"""Notifier delivery rate and latency against the Telegram sandbox at Telegram's REAL limits.

Runs a real nats-server, the sandbox (subprocess, flood control on, rate_scale 1) and the
notifier (subprocess, default limits), then:
1. backlog: 600 messages over 60 private chats + 3 groups are stored in the outbox before the
   notifier starts; prints messages/s achieved (first to last accepted call, from the
   sandbox's call timestamps) against the 30/s ceiling, and the 429s received;
2. latency: 10 messages/s for 20 s, spread over the same chats; prints p50 / p99 / max from
   the outbox PubAck (what a tool call waits for) to the sandbox accepting the sendMessage.

    uv run python bench/delivery_rate.py [--backlog 600] [--latency-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.js import JetStreamContext

from cctelegram_common import streams, subjects
from cctelegram_common.contracts.outbox import Operation, OutboxMessage
from cctelegram_common.natsserver import NatsServer
from cctelegram_notifier.testing import NotifierProcess, sandbox_calls
from cctelegram_sandbox.testing import RunningSandbox, run_sandbox

PRIVATE_CHATS = 60
GROUPS = 3
# Telegram allows 20/min per group: a group's share of a 20 s backlog stays under that.
MESSAGES_PER_GROUP = 10
CEILING_PER_S = 30.0


def make_chats(sandbox: RunningSandbox) -> tuple[list[int], list[int]]:
    private = [
        sandbox.create_chat(type="private", user={"id": 10_000 + n, "first_name": f"P{n}"})["id"]
        for n in range(PRIVATE_CHATS)
    ]
    groups = [sandbox.create_chat(type="group", title=f"team {n}")["id"] for n in range(GROUPS)]
    return private, groups


def backlog_plan(total: int, private: list[int], groups: list[int]) -> list[int]:
    """Target chat of each message, interleaved the way a real backlog mixes chats."""
    group_share = [chat for _ in range(MESSAGES_PER_GROUP) for chat in groups]
    private_share = [private[n % len(private)] for n in range(total - len(group_share))]
    plan: list[int] = []
    step = max(1, len(private_share) // max(1, len(group_share)))
    for index, chat in enumerate(private_share):
        plan.append(chat)
        if index % step == step - 1 and group_share:
            plan.append(group_share.pop(0))
    return plan + group_share


async def publish(js: JetStreamContext, outbox_id: str, chat: int) -> None:
    message = OutboxMessage(
        outbox_id=outbox_id,
        operation=Operation.SEND_MESSAGE,
        chat_id=chat,
        text=outbox_id,
        parse_mode=None,
    )
    await js.publish(
        subjects.outbox_subject(chat),
        message.model_dump_json().encode(),
        headers={subjects.HEADER_MSG_ID: outbox_id},
        stream=subjects.STREAM_OUTBOX,
    )


def accepted(sandbox: RunningSandbox, prefix: str) -> dict[str, float]:
    """outbox id → when the sandbox accepted its sendMessage (first 200)."""
    times: dict[str, float] = {}
    for call in sandbox_calls(sandbox, "sendMessage"):
        text = str((call.get("params") or {}).get("text", ""))
        if call["status"] == 200 and text.startswith(prefix):
            times.setdefault(text, float(call["timestamp"]))
    return times


async def wait_for(sandbox: RunningSandbox, prefix: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(accepted(sandbox, prefix)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(accepted(sandbox, prefix))}/{count} delivered")
        await asyncio.sleep(0.5)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def main(backlog: int, latency_seconds: float, rate_per_s: float) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        NatsServer(Path(tmp) / "nats") as server,
        run_sandbox(subprocess=True, rate_scale=1.0) as sandbox,
    ):
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await streams.provision(js)
        private, groups = make_chats(sandbox)
        plan = backlog_plan(backlog, private, groups)
        for index, chat in enumerate(plan):
            await publish(js, f"backlog-{index}", chat)
        notifier = NotifierProcess(
            {
                "NATS_URL": server.url,
                "TELEGRAM_BOT_TOKEN": sandbox.token,
                "TELEGRAM_API_BASE_URL": sandbox.url,
                "NOTIFIER_POLLING__ENABLED": "false",
            },
            log_path=str(Path(tmp) / "notifier.log"),
        )
        notifier.start()
        try:
            await wait_for(sandbox, "backlog-", len(plan), timeout_s=120)
            stamps = sorted(accepted(sandbox, "backlog-").values())
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            statuses: dict[str, Any] = sandbox.stats()["calls_by_status"]
            limited = int(statuses.get("429", 0))
            print(
                f"backlog: {len(plan)} messages over {PRIVATE_CHATS} private chats + {GROUPS} "
                f"groups in {stamps[-1] - stamps[0]:.1f}s"
            )
            print(
                f"  rate: {rate:.2f} msg/s of the {CEILING_PER_S:.0f}/s ceiling "
                f"({100 * rate / CEILING_PER_S:.1f} %; target >= 28.5/s)"
            )
            print(f"  429s received: {limited} (target 0)")
            calls = sandbox_calls(sandbox, "sendMessage")
            for call in calls:
                if call["status"] == 429:
                    at = call["timestamp"]
                    same_chat = [
                        round(c["timestamp"] - at, 3)
                        for c in calls
                        if c["chat_id"] == call["chat_id"] and abs(c["timestamp"] - at) < 3
                    ]
                    in_second = sum(
                        1 for c in calls if c["status"] == 200 and at - 1 < c["timestamp"] <= at
                    )
                    print(
                        f"    429: chat {call['chat_id']} at +{at - stamps[0]:.3f}s "
                        f"({call['description']}); same chat at {same_chat}; "
                        f"{in_second} accepted in the second before"
                    )

            await asyncio.sleep(3.0)  # let every per-chat window empty
            chats = private + groups
            published_at: dict[str, float] = {}
            count = int(latency_seconds * rate_per_s)
            start = time.monotonic()
            for index in range(count):
                await asyncio.sleep(max(0.0, start + index / rate_per_s - time.monotonic()))
                outbox_id = f"latency-{index}"
                await publish(js, outbox_id, chats[index % len(chats)])
                published_at[outbox_id] = time.time()  # the PubAck is what a tool call awaits
            await wait_for(sandbox, "latency-", count, timeout_s=60)
            done = accepted(sandbox, "latency-")
            latencies_ms = [1000 * (done[oid] - published_at[oid]) for oid in published_at]
            print(
                f"latency at {rate_per_s:.0f} msg/s ({count} messages, outbox PubAck -> "
                f"sandbox accepted):"
            )
            print(
                f"  p50 {statistics.median(latencies_ms):.1f} ms (target <= 15), "
                f"p99 {percentile(latencies_ms, 0.99):.1f} ms (target <= 60), "
                f"max {max(latencies_ms):.1f} ms"
            )
            statuses = sandbox.stats()["calls_by_status"]
            print(f"  429s received in total: {int(statuses.get('429', 0))}")
        finally:
            notifier.stop()
            await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=600)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s in the latency run")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.backlog, arguments.latency_seconds, arguments.rate))
