"""Notifier delivery rate and latency against the Telegram sandbox at Telegram's REAL limits.

Runs a real nats-server, the sandbox (subprocess, flood control on, rate_scale 1) and the
notifier (subprocess, default limits), then:
1. backlog (burst coalescing off, so every message is its own call, as before): 600 messages
   over 60 private chats + 3 groups are stored in the outbox before the notifier starts;
   prints messages/s achieved (first to last accepted call, from the sandbox's call
   timestamps) against the 30/s ceiling, and the 429s received;
2. latency (a fresh notifier with default settings, coalescing on from here): 10 messages/s
   for 20 s, spread over the same chats; prints p50 / p99 / max from the outbox PubAck (what
   a tool call waits for) to the sandbox accepting the sendMessage;
3. burst: 60 notifications in 6 s to one private chat; prints the time from the first
   publish until the last of them is visible, the calls that carried them and the 429s;
   ``--baseline`` runs the same burst with coalescing off first (over a minute: one call per
   second per chat).
4. many bots (``--bots 3``, its own sandbox and notifier): the same backlog for each of three
   bots (each with its own 60 private chats + 3 groups in the sandbox), one notifier process
   serving all three (``TELEGRAM_BOT_TOKENS``); prints the combined rate against the 3 x 30/s
   ceiling and the 429s. ``--only-bots`` runs just this part.

    uv run python bench/delivery_rate.py [--backlog 600] [--latency-seconds 20] [--baseline]
                                         [--bots 3] [--only-bots]
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
from cctelegram_notifier.coalesce import SEPARATOR
from cctelegram_testing.bench import percentile
from cctelegram_testing.nats import NatsServer
from cctelegram_testing.notifier import NotifierProcess, sandbox_calls
from cctelegram_testing.sandbox import RunningSandbox, run_sandbox

PRIVATE_CHATS = 60
GROUPS = 3
# Telegram allows 20/min per group: a group's share of a 20 s backlog stays under that.
MESSAGES_PER_GROUP = 10
CEILING_PER_S = 30.0
BURST_COUNT = 60
BURST_SECONDS = 6.0


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


async def publish(js: JetStreamContext, outbox_id: str, chat: int, text: str | None = None) -> None:
    message = OutboxMessage(
        outbox_id=outbox_id,
        operation=Operation.SEND_MESSAGE,
        chat_id=chat,
        text=text or outbox_id,
        parse_mode=None if text is None else "HTML",
    )
    await js.publish(
        subjects.outbox_subject(chat),
        message.model_dump_json().encode(),
        headers={subjects.HEADER_MSG_ID: outbox_id},
        stream=subjects.STREAM_OUTBOX,
    )


def accepted(sandbox: RunningSandbox, prefix: str) -> dict[str, float]:
    """original → when the sandbox accepted the sendMessage that carried it (first 200);
    a coalesced call carries several, separated by the rule line."""
    times: dict[str, float] = {}
    for call in sandbox_calls(sandbox, "sendMessage"):
        if call["status"] != 200:
            continue
        for part in str((call.get("params") or {}).get("text", "")).split(SEPARATOR):
            if part.startswith(prefix):
                times.setdefault(part.split(":")[0], float(call["timestamp"]))
    return times


def calls_carrying(sandbox: RunningSandbox, prefix: str) -> list[int]:
    """How many originals each accepted call with ``prefix`` carried."""
    return [
        len(str(call["params"].get("text", "")).split(SEPARATOR))
        for call in sandbox_calls(sandbox, "sendMessage")
        if call["status"] == 200 and str(call["params"].get("text", "")).startswith(prefix)
    ]


def rate_limited(sandbox: RunningSandbox) -> int:
    statuses: dict[str, Any] = sandbox.stats()["calls_by_status"]
    return int(statuses.get("429", 0))


def start_notifier(
    server: NatsServer, sandbox: RunningSandbox, log_path: Path, *, coalesce: bool
) -> NotifierProcess:
    notifier = NotifierProcess(
        {
            "NATS_URL": server.url,
            "TELEGRAM_BOT_TOKEN": sandbox.token,
            "TELEGRAM_API_BASE_URL": sandbox.url,
            "NOTIFIER_POLLING__ENABLED": "false",
            "NOTIFIER_COALESCE__ENABLED": str(coalesce).lower(),
        },
        log_path=str(log_path),
    )
    return notifier.start()


async def burst(
    js: JetStreamContext, sandbox: RunningSandbox, label: str, count: int, seconds: float
) -> None:
    """``count`` notifications spread evenly over ``seconds`` to one new private chat."""
    user = {"id": 90_000 + sum(map(ord, label)), "first_name": label}  # a chat per label
    chat = sandbox.create_chat(type="private", user=user)["id"]
    limited_before = rate_limited(sandbox)
    prefix = f"{label}-"
    started = time.time()
    start = time.monotonic()
    for index in range(count):
        await asyncio.sleep(max(0.0, start + index * seconds / count - time.monotonic()))
        outbox_id = f"{prefix}{index}"
        text = f"{outbox_id}: <b>step {index}</b> finished, tests green ✅"
        await publish(js, outbox_id, chat, text)
    await wait_for(sandbox, prefix, count, timeout_s=180)
    visible_s = max(accepted(sandbox, prefix).values()) - started
    carried = calls_carrying(sandbox, prefix)
    print(
        f"  {label}: {count} notifications in {seconds:.0f}s to one chat -> all visible "
        f"{visible_s:.1f}s after the first was published (target <= 10 s); "
        f"{len(carried)} sendMessage calls carried them (up to {max(carried)} each); "
        f"429s received: {rate_limited(sandbox) - limited_before} (target 0)"
    )


async def wait_for(sandbox: RunningSandbox, prefix: str, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(accepted(sandbox, prefix)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(accepted(sandbox, prefix))}/{count} delivered")
        await asyncio.sleep(0.5)


BOT_TOKENS = tuple(f"{700000 + n}:bench-bot-token-{n}-abcdefghijklmnop" for n in range(10))


async def many_bots(
    bots: int, backlog: int, replicas: int, in_flight: int | None, *, per_bot: bool = False
) -> None:
    """``backlog`` messages for each of ``bots`` bots, stored before the notifier starts."""
    tokens = BOT_TOKENS[:bots]
    with (
        tempfile.TemporaryDirectory() as tmp,
        NatsServer(Path(tmp) / "nats") as server,
        run_sandbox(
            subprocess=True, rate_scale=1.0, token=tokens[0], extra_tokens=tokens[1:]
        ) as sandbox,
    ):
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await streams.provision(js)
        names: list[str | None] = [None, *(f"bot{n}" for n in range(1, bots))]
        for token, name in zip(tokens, names, strict=True):
            bot_id = int(token.split(":")[0])
            private = [
                sandbox.api("POST", "/chats", json={"type": "private", "user": {"id": 10_000 + n}},
                            bot=bot_id)["id"]
                for n in range(PRIVATE_CHATS)
            ]  # fmt: skip
            groups = [
                sandbox.api("POST", "/chats", json={"type": "group", "title": f"t{n}"},
                            bot=bot_id)["id"]
                for n in range(GROUPS)
            ]  # fmt: skip
            for index, chat in enumerate(backlog_plan(backlog, private, groups)):
                outbox_id = f"bots-{name or 'default'}-{index}"
                message = OutboxMessage(
                    outbox_id=outbox_id,
                    operation=Operation.SEND_MESSAGE,
                    chat_id=chat,
                    bot=name,
                    text=outbox_id,
                    parse_mode=None,
                )
                await js.publish(
                    subjects.outbox_subject(chat, name),
                    message.model_dump_json().encode(),
                    headers={subjects.HEADER_MSG_ID: outbox_id},
                    stream=subjects.STREAM_OUTBOX,
                )
        env = {
            "NATS_URL": server.url,
            "TELEGRAM_BOT_TOKEN": tokens[0],
            "TELEGRAM_BOT_TOKENS": ",".join(
                f"{name}={token}" for name, token in zip(names[1:], tokens[1:], strict=True)
            ),
            "TELEGRAM_API_BASE_URL": sandbox.url,
            "NOTIFIER_POLLING__ENABLED": "false",
            "NOTIFIER_COALESCE__ENABLED": "false",
            **({"NOTIFIER_TELEGRAM__MAX_IN_FLIGHT": str(in_flight)} if in_flight else {}),
        }
        if per_bot:
            # One notifier process per bot (NOTIFIER_ONLY_BOTS): each bot gets a core's worth.
            notifiers = [
                NotifierProcess(
                    {**env, "NOTIFIER_ONLY_BOTS": name or "default"},
                    log_path=str(Path(tmp) / f"notifier-{name or 'default'}.log"),
                ).start()
                for name in names
            ]
        else:
            notifiers = [
                NotifierProcess(env, log_path=str(Path(tmp) / f"notifier-{n}.log")).start()
                for n in range(replicas)
            ]
        total = backlog * bots

        def calls() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            for token in tokens:
                bot_id = int(token.split(":")[0])
                listed = sandbox.api("GET", "/calls", method="sendMessage", bot=bot_id)
                found += [{**call, "bot_id": bot_id} for call in listed]
            return found

        try:
            deadline = time.monotonic() + 180
            while True:
                done = [c for c in calls() if c["status"] == 200]
                if len(done) >= total:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(done)}/{total} delivered")
                await asyncio.sleep(1.0)
            stamps = sorted(float(c["timestamp"]) for c in done)
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            ceiling = CEILING_PER_S * bots
            limited = sum(1 for c in calls() if c["status"] == 429)
            print(
                f"{bots} bots x backlog: {total} messages ({backlog} per bot over "
                f"{PRIVATE_CHATS} private chats + {GROUPS} groups each), "
                f"{len(notifiers)} notifier process(es)"
                f"{' (one per bot)' if per_bot else ''}, in {stamps[-1] - stamps[0]:.1f}s"
            )
            print(
                f"  rate: {rate:.2f} msg/s of the {ceiling:.0f}/s ceiling "
                f"({100 * rate / ceiling:.1f} %; target >= {0.95 * ceiling:.1f}/s)"
            )
            print(f"  429s received: {limited} (target 0)")
            for token in tokens:
                bot_id = int(token.split(":")[0])
                own = sorted(float(c["timestamp"]) for c in done if c.get("bot_id") == bot_id)
                if len(own) > 1:
                    print(
                        f"  bot {bot_id}: {(len(own) - 1) / (own[-1] - own[0]):.2f} msg/s, "
                        f"first call +{own[0] - stamps[0]:.2f}s, last +{own[-1] - stamps[0]:.2f}s"
                    )
            per_second = [0] * (int(stamps[-1] - stamps[0]) + 1)
            for at in stamps:
                per_second[int(at - stamps[0])] += 1
            print(f"  calls per second: {per_second}")
        finally:
            for notifier in notifiers:
                notifier.stop()
            await nc.close()


async def main(backlog: int, latency_seconds: float, rate_per_s: float, *, baseline: bool) -> None:
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
        notifier = start_notifier(server, sandbox, Path(tmp) / "notifier.log", coalesce=False)
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

            if baseline:
                print("burst with coalescing off (one call per second per chat):")
                await burst(js, sandbox, "baseline", BURST_COUNT, BURST_SECONDS)
            notifier.stop()
            await asyncio.sleep(3.0)  # let every per-chat window empty
            # From here on the notifier runs with its defaults: bursts coalesced.
            notifier = start_notifier(
                server, sandbox, Path(tmp) / "notifier-default.log", coalesce=True
            )
            await asyncio.to_thread(notifier.wait_ready)
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

            await asyncio.sleep(2.0)
            print("burst with coalescing on (the default):")
            await burst(js, sandbox, "burst", BURST_COUNT, BURST_SECONDS)
            print(f"  429s received in total: {rate_limited(sandbox)}")
        finally:
            notifier.stop()
            await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=600)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s in the latency run")
    parser.add_argument(
        "--baseline", action="store_true", help="also run the burst with coalescing off (>60 s)"
    )
    parser.add_argument("--bots", type=int, default=3, help="bots in the many-bots run (0: off)")
    parser.add_argument("--only-bots", action="store_true", help="only the many-bots run")
    parser.add_argument("--replicas", type=int, default=1, help="notifiers in the many-bots run")
    parser.add_argument(
        "--in-flight", type=int, default=None, help="NOTIFIER_TELEGRAM__MAX_IN_FLIGHT (per bot)"
    )
    parser.add_argument(
        "--per-bot-process", action="store_true", help="one notifier process per bot"
    )
    arguments = parser.parse_args()
    if not arguments.only_bots:
        asyncio.run(
            main(
                arguments.backlog,
                arguments.latency_seconds,
                arguments.rate,
                baseline=arguments.baseline,
            )
        )
    if arguments.bots:
        asyncio.run(
            many_bots(
                arguments.bots,
                arguments.backlog,
                arguments.replicas,
                arguments.in_flight,
                per_bot=arguments.per_bot_process,
            )
        )
