"""``cctelegram routes list|add|remove``: manage route rules by talking to events over NATS."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from cctelegram_cli.keys import KeysCommandError, _call
from cctelegram_common import subjects
from cctelegram_common.contracts.routing import (
    RouteAddRequest,
    RouteList,
    RouteListRequest,
    RouteRemoveRequest,
    RouteRule,
)

ACTOR = "cli"


def describe(rule: RouteRule) -> str:
    """One line per rule: what it matches → where it sends."""
    match = []
    if rule.clients:
        match.append("client=" + ",".join(rule.clients))
    if rule.projects:
        match.append("project=" + ",".join(rule.projects))
    if rule.types:
        match.append("type=" + ",".join(kind.value for kind in rule.types))
    if rule.min_severity is not None:
        match.append(f"severity>={rule.min_severity.value}")
    where = f"bot={rule.bot} chat={rule.chat_id}"
    if rule.topic is not None:
        where += f" topic={rule.topic if isinstance(rule.topic, int) else rule.topic.value}"
    if rule.approvers is not None:
        where += " approvers=" + ",".join(str(a) for a in rule.approvers)
    if rule.quorum > 1:
        where += f" quorum={rule.quorum}"
    if rule.escalate_to:
        where += f" escalate={rule.escalate_after_minutes:g}m→{rule.escalate_to}"
    return f"{rule.name:<20} {' '.join(match) or '(everything)'} → {where}"


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(
        part.strip() for value in values or [] for part in value.split(",") if part.strip()
    )


def _rule(args: argparse.Namespace) -> RouteRule:
    fields: dict[str, object] = {
        "name": args.name,
        "chat_id": args.chat,
        "bot": args.bot,
        "clients": _split(args.client),
        "projects": _split(args.project),
        "types": _split(args.type),
        "min_severity": args.min_severity,
        "topic": args.topic,
        "quorum": args.quorum,
        "escalate_after_minutes": args.escalate_after,
        "escalate_to": args.escalate_to,
        "description": args.description,
    }
    if args.approvers is not None:
        fields["approvers"] = tuple(int(a) for a in _split([args.approvers]))
    return RouteRule.model_validate(fields)


def _run(args: argparse.Namespace) -> int:
    url: str = args.nats_url
    try:
        if args.routes_command == "list":
            listed = asyncio.run(
                _call(url, subjects.EVENTS_RPC_ROUTES_LIST, RouteListRequest(), RouteList)
            )
            if args.json:
                print(listed.model_dump_json(indent=2))
            elif not listed.rules:
                print("no routes: every allowed user's private chat gets everything")
            else:
                for rule in listed.rules:
                    print(describe(rule))
        elif args.routes_command == "add":
            request = RouteAddRequest(rule=_rule(args), actor=ACTOR)
            saved = asyncio.run(_call(url, subjects.EVENTS_RPC_ROUTES_ADD, request, RouteRule))
            print(saved.model_dump_json(indent=2) if args.json else describe(saved))
        else:
            removal = RouteRemoveRequest(name=args.name, actor=ACTOR)
            removed = asyncio.run(_call(url, subjects.EVENTS_RPC_ROUTES_REMOVE, removal, RouteRule))
            print(removed.model_dump_json(indent=2) if args.json else f"removed {removed.name}")
    except KeysCommandError as error:
        print(f"cctelegram routes: {str(error).replace('auth service', 'events service')}",
              file=sys.stderr)  # fmt: skip
        return 1
    except ValueError as error:  # pydantic: a bad name, chat, topic...
        first = str(error).splitlines()
        print(f"cctelegram routes: invalid input: {' '.join(first[:3])}", file=sys.stderr)
        return 2
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "routes", help="list, add or remove route rules (talks to events over NATS)"
    )
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS_URL (nats://127.0.0.1:4222)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="routes_command", required=True)
    listing = commands.add_parser("list", help="list the rules")
    add = commands.add_parser("add", help="add a rule (or replace the rule of that name)")
    add.add_argument("name")
    add.add_argument("--chat", type=int, required=True, help="target chat id")
    add.add_argument("--bot", default="default", help="bot name (default)")
    add.add_argument("--topic", default=None, help="per-project, per-session or a thread id")
    add.add_argument("--client", action="append", help="API client(s) it matches")
    add.add_argument("--project", action="append", help="project(s) it matches")
    add.add_argument("--type", action="append", help="event type(s) it matches")
    add.add_argument("--min-severity", default=None, help="low, medium, high or critical")
    add.add_argument("--approvers", default=None, help="Telegram user ids, comma-separated")
    add.add_argument("--quorum", type=int, default=1, help="approvals needed (1)")
    add.add_argument("--escalate-after", type=float, default=None, help="minutes")
    add.add_argument("--escalate-to", default=None, help="rule to escalate to")
    add.add_argument("--description", default="")
    remove = commands.add_parser("remove", help="remove a rule")
    remove.add_argument("name")
    for sub in (listing, add, remove):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.add_argument("--nats-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)
