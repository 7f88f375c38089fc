"""``cctelegram keys create|list|revoke|rotate|webhook-secret``: API keys, over NATS to auth."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TypeVar

import nats
from nats.errors import Error as NatsError
from pydantic import BaseModel

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import (
    CreatedKey,
    CreateKeyRequest,
    KeyInfo,
    KeyList,
    ListKeysRequest,
    RevokeKeyRequest,
    Role,
    RotatedKey,
    RotateKeyRequest,
)
from cctelegram_common.contracts.webhooks import CreatedWebhookSecret, CreateWebhookSecretRequest
from cctelegram_common.nats import RpcFailedError, rpc_call

ResultT = TypeVar("ResultT", bound=BaseModel)
ACTOR = "cli"


class KeysCommandError(Exception):
    """Something to tell the user in one line."""


async def _quiet(_error: Exception) -> None:
    """nats-py prints every connection error with a traceback by default; we say it once."""


async def _call(url: str, subject: str, request: BaseModel, result: type[ResultT]) -> ResultT:
    try:
        connection = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=2,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                allow_reconnect=False,
                error_cb=_quiet,
            ),
            10,
        )
    except (NatsError, OSError, TimeoutError) as error:
        raise KeysCommandError(f"cannot reach NATS at {url} ({type(error).__name__})") from None
    try:
        return await rpc_call(connection, subject, request, result, timeout_s=5)
    except RpcFailedError as failed:
        if failed.error.code == "unavailable":
            raise KeysCommandError(
                f"the auth service did not answer ({failed.error.message}); is it running?"
            ) from None
        raise KeysCommandError(failed.error.message) from None
    finally:
        await connection.close()


def _describe(info: KeyInfo) -> str:
    state = "active" if info.active else ("revoked" if info.revoked_at else "expired")
    limit = f"{info.rate_limit_per_minute}/min" if info.rate_limit_per_minute else "default"
    expires = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
    used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never"
    return (
        f"{info.key_id}  {info.client_id:<20} {info.role.value:<8} {state:<7} "
        f"limit={limit} expires={expires} last_used={used} {info.label}"
    ).rstrip()


def _run(args: argparse.Namespace) -> int:
    url: str = args.nats_url
    try:
        if args.keys_command == "create":
            created = asyncio.run(
                _call(
                    url,
                    subjects.AUTH_RPC_CREATE_KEY,
                    CreateKeyRequest(
                        client_id=args.client_id,
                        role=Role(args.role),
                        label=args.label,
                        rate_limit_per_minute=args.rate_limit,
                        expires_in_s=args.expires_in,
                        actor=ACTOR,
                    ),
                    CreatedKey,
                )
            )
            _print_new_key(created.api_key, created.key, args.json)
        elif args.keys_command == "list":
            listed = asyncio.run(
                _call(
                    url,
                    subjects.AUTH_RPC_LIST_KEYS,
                    ListKeysRequest(client_id=args.client_id, include_inactive=args.all),
                    KeyList,
                )
            )
            if args.json:
                print(listed.model_dump_json(indent=2))
            else:
                for info in listed.keys:
                    print(_describe(info))
        elif args.keys_command == "revoke":
            revoked = asyncio.run(
                _call(
                    url,
                    subjects.AUTH_RPC_REVOKE_KEY,
                    RevokeKeyRequest(key_id=args.key_id, actor=ACTOR),
                    KeyInfo,
                )
            )
            print(revoked.model_dump_json(indent=2) if args.json else _describe(revoked))
        elif args.keys_command == "webhook-secret":
            made = asyncio.run(
                _call(
                    url,
                    subjects.AUTH_RPC_CREATE_WEBHOOK_SECRET,
                    CreateWebhookSecretRequest(key_id=args.key_id, actor=ACTOR),
                    CreatedWebhookSecret,
                )
            )
            if args.json:
                print(made.model_dump_json(indent=2))
            else:
                print(
                    f"webhook secret of client {made.client_id} (replaces any previous one); "
                    "store it now, it is not shown again:",
                    file=sys.stderr,
                )
                print(made.webhook_secret)
        else:
            rotated = asyncio.run(
                _call(
                    url,
                    subjects.AUTH_RPC_ROTATE_KEY,
                    RotateKeyRequest(
                        key_id=args.key_id, old_key_valid_for_s=args.grace, actor=ACTOR
                    ),
                    RotatedKey,
                )
            )
            print(f"old key: {_describe(rotated.old_key)}", file=sys.stderr)
            _print_new_key(rotated.api_key, rotated.key, args.json)
    except KeysCommandError as error:
        print(f"cctelegram keys: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # pydantic: a bad client id, key id...
        first = str(error).splitlines()
        print(f"cctelegram keys: invalid input: {' '.join(first[:3])}", file=sys.stderr)
        return 2
    return 0


def _print_new_key(api_key: str, info: KeyInfo, as_json: bool) -> None:
    if as_json:
        print(f'{{"api_key": "{api_key}", "key": {info.model_dump_json()}}}')
        return
    # The key alone on stdout (easy to capture); the explanation on stderr.
    print(f"new key: {_describe(info)}", file=sys.stderr)
    print("store this key now; it is not shown again:", file=sys.stderr)
    print(api_key)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "keys", help="create, list, revoke or rotate API keys (talks to auth over NATS)"
    )
    parser.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS_URL (nats://127.0.0.1:4222)",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="keys_command", required=True)
    create = commands.add_parser("create", help="issue a key (printed once)")
    create.add_argument("--client-id", required=True, help="who the key is for")
    create.add_argument("--role", choices=[role.value for role in Role], default="agent")
    create.add_argument("--label", default="", help="what the key is for")
    create.add_argument("--rate-limit", type=int, default=None, help="calls per minute")
    create.add_argument("--expires-in", type=int, default=None, help="lifetime in seconds")
    listing = commands.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--client-id", default=None)
    listing.add_argument("--all", action="store_true", help="include revoked and expired keys")
    revoke = commands.add_parser("revoke", help="revoke a key (by key id)")
    revoke.add_argument("key_id")
    rotate = commands.add_parser("rotate", help="replace a key; the old one works for --grace s")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", type=int, default=3600, help="old key's grace period (3600)")
    webhook = commands.add_parser(
        "webhook-secret",
        help="create the webhook signing secret of a key's client (printed once)",
    )
    webhook.add_argument("key_id")
    for sub in (create, listing, revoke, rotate, webhook):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.add_argument("--nats-url", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)
