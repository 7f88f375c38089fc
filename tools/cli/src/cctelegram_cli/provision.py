"""``cctelegram provision``: create the suite's streams and KV buckets with admin credentials.

In production the services connect with least-privilege NATS users that may not create
streams (``<PREFIX>NATS__PROVISION=false``); this deploy-time step, run once per release
with the admin user (a Kubernetes Job, a compose one-shot service, or by hand), creates
what is missing. It is idempotent: existing streams and buckets are left as they are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors

from cctelegram_common import streams
from cctelegram_common.resilience import backoff_delay


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="create the streams and KV buckets (admin credentials; idempotent)",
        description="Create every stream and KV bucket of the suite that does not exist yet. "
        "Every flag also reads its environment name; prefer the environment (or a file) "
        "for the password.",
    )
    env = os.environ
    parser.add_argument(
        "--nats-url",
        default=env.get("NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS_URL: one server or a comma-separated list (a cluster)",
    )
    parser.add_argument(
        "--creds", type=Path, default=env.get("NATS_CREDS"), help="NATS_CREDS: a .creds file"
    )
    parser.add_argument("--user", default=env.get("NATS_USER"), help="NATS_USER")
    parser.add_argument(
        "--password",
        default=env.get("NATS_PASSWORD"),
        help="NATS_PASSWORD (visible in the process list when given as a flag)",
    )
    parser.add_argument(
        "--password-file",
        type=Path,
        default=env.get("NATS_PASSWORD_FILE"),
        help="NATS_PASSWORD_FILE: read the password from this file (a mounted secret)",
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=int(env.get("NATS_REPLICAS", "1")),
        help="NATS_REPLICAS: copies of every new stream and bucket (3 on a 3-node cluster)",
    )
    parser.add_argument(
        "--history-days",
        type=float,
        default=float(env.get("CCTG_HISTORY_DAYS", "30")),
        help="CCTG_HISTORY_DAYS: how long decided approvals, event statuses and delivery "
        "records are kept (applied to existing buckets too; give the events service the same)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="create nothing; exit 1 when something is missing",
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=float(env.get("CCTELEGRAM_PROVISION_WAIT_S", "120")),
        help="keep retrying this long while NATS or its JetStream leader is not there yet",
    )
    parser.set_defaults(func=run_provision)


def connect_options(args: argparse.Namespace) -> dict[str, Any]:
    """nats-py connect options from the flags; the password never leaves this dict."""
    servers = [url.strip() for url in str(args.nats_url).split(",") if url.strip()]
    options: dict[str, Any] = {
        "servers": servers,
        "name": "cctelegram-provision",
        "connect_timeout": 2,
        # Try each server of the list once per attempt; the retry loop below waits between.
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 0.2,
    }
    if args.creds is not None:
        options["user_credentials"] = str(args.creds)
    elif args.user:
        password = args.password
        if args.password_file is not None:
            password = Path(args.password_file).read_text().strip()
        options["user"] = args.user
        options["password"] = password or ""
    return options


async def provision_once(
    options: dict[str, Any],
    replicas: int,
    create: bool,
    history_s: float = streams.DEFAULT_HISTORY_S,
) -> list[str]:
    async def ignore_errors(_error: Exception) -> None:
        """Errors surface as exceptions of the calls below; no background noise."""

    connection = await nats.connect(**options, error_cb=ignore_errors)
    try:
        return await streams.provision(
            connection.jetstream(),
            replicas=replicas,
            create=create,
            history_s=history_s,
            apply_history=True,
        )
    finally:
        await connection.close()


async def provision_with_retries(
    options: dict[str, Any],
    replicas: int,
    create: bool,
    wait_s: float,
    history_s: float = streams.DEFAULT_HISTORY_S,
) -> list[str]:
    """Retry what a fresh cluster answers while it settles (no server yet, no JetStream
    leader yet); refuse at once what retrying cannot fix (bad credentials, a refusal)."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await provision_once(options, replicas, create, history_s)
        except (streams.ProvisioningError, nats.errors.AuthorizationError):
            raise
        except (OSError, nats.errors.Error, TimeoutError) as error:
            if not retryable(error):
                raise
            delay = max(0.5, backoff_delay(attempt, base_s=0.5, cap_s=5.0))
            if time.monotonic() + delay > deadline:
                raise
            print(f"cctelegram provision: {type(error).__name__}; retrying in {delay:.1f}s")
            await asyncio.sleep(delay)


def retryable(error: BaseException) -> bool:
    """Worth another try: the server or the JetStream leader is not there yet."""
    if "authorization" in str(error).lower():
        return False
    if isinstance(error, nats.js.errors.APIError):
        return error.code in (None, 503)
    return True


def run_provision(args: argparse.Namespace) -> int:
    if args.replicas < 1 or args.replicas > 5:
        print("cctelegram provision: --replicas must be between 1 and 5")
        return 2
    if args.history_days <= 0:
        print("cctelegram provision: --history-days must be more than 0")
        return 2
    options = connect_options(args)
    try:
        created = asyncio.run(
            provision_with_retries(
                options,
                args.replicas,
                not args.check,
                args.wait_s,
                args.history_days * streams.DAY_S,
            )
        )
    except streams.ProvisioningError as error:
        print(f"cctelegram provision: {error}")
        return 1
    except Exception as error:
        print(f"cctelegram provision: failed: {type(error).__name__}: {error}")
        return 1
    if args.check:
        print("cctelegram provision: every stream and bucket exists")
    elif created:
        print(f"cctelegram provision: created {', '.join(created)} (replicas={args.replicas})")
    else:
        print("cctelegram provision: nothing to do, every stream and bucket exists")
    return 0
