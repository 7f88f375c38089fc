"""``cctelegram notify`` and ``cctelegram approve``: one-line commands for CI jobs and scripts.

Both talk to the gateway's REST resources (``CCTELEGRAM_URL``, ``CCTELEGRAM_API_KEY``).
``approve`` creates an approval, long-polls ``GET /v1/approvals/{id}?wait=`` until it is
decided or ``--wait`` runs out, prints the outcome and exits with a code a job can gate on:
0 approved (or a custom option chosen), 1 rejected, 2 expired / cancelled / the wait ran
out, 3 usage or authentication error (and anything that stops it from asking at all).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import uuid
from typing import Any

import httpx

URL_ENV = "CCTELEGRAM_URL"
KEY_ENV = "CCTELEGRAM_API_KEY"
EXIT_APPROVED = 0
EXIT_REJECTED = 1
EXIT_NOT_DECIDED = 2
EXIT_USAGE = 3
MAX_POLL_S = 120.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class UsageError(Exception):
    """Exit 3 with this message."""


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1.5h``, ``45`` (seconds) → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h)")
    seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a duration must be more than zero")
    return seconds


class Gateway:
    """The REST calls the commands make; every failure to even ask is a ``UsageError``."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "cctelegram-cli"},
            timeout=httpx.Timeout(timeout_s, read=MAX_POLL_S + 30),
        )

    @classmethod
    def from_env(cls) -> Gateway:
        url = os.environ.get(URL_ENV, "").strip()
        key = os.environ.get(KEY_ENV, "").strip()
        if not url:
            raise UsageError(f"{URL_ENV} is not set (e.g. https://cctelegram.example.com)")
        if not key:
            raise UsageError(f"{KEY_ENV} is not set")
        return cls(url, key)

    def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise UsageError(f"cannot reach the gateway ({type(error).__name__})") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            detail = body.get("error", {}) if isinstance(body, dict) else {}
            message = detail.get("message") or response.reason_phrase
            raise UsageError(f"HTTP {response.status_code}: {message}")
        if not isinstance(body, dict):
            raise UsageError("the gateway answered something that is not a JSON object")
        return body

    def close(self) -> None:
        self.http.close()


def _notify(args: argparse.Namespace) -> int:
    lines = args.text.strip().splitlines()
    if not lines:
        raise UsageError("TEXT is empty")
    title = lines[0].strip()[:200]
    description = "\n".join(lines[1:]).strip() or args.text.strip()
    body: dict[str, Any] = {
        "type": args.type,
        "title": title,
        "description": description[:2000],
        "source": args.source,
    }
    if args.project:
        body["data"] = {"project": args.project}
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    gateway = Gateway.from_env()
    try:
        result = gateway.request("POST", "/v1/events", json=body, headers=headers)
    finally:
        gateway.close()
    print(f"queued {result.get('event_id')}")
    return 0


def exit_code_of(status: str) -> int:
    if status in ("approved", "decided"):
        return EXIT_APPROVED
    if status == "rejected":
        return EXIT_REJECTED
    return EXIT_NOT_DECIDED


def describe(approval: dict[str, Any]) -> str:
    status = str(approval.get("status"))
    if status == "pending":
        return f"still pending: approval {approval.get('approval_id')} was not decided in time"
    who = approval.get("decided_by_username") or approval.get("decided_by_user_id")
    parts = [status]
    if approval.get("chosen_option"):
        parts.append(f"({approval['chosen_option']})")
    if who:
        parts.append(f"by {'@' if isinstance(who, str) else ''}{who}")
    if approval.get("decided_at"):
        parts.append(f"at {approval['decided_at']}")
    if approval.get("comment"):
        parts.append(f"— {approval['comment']}")
    if approval.get("cancel_reason"):
        parts.append(f"— {approval['cancel_reason']}")
    return " ".join(parts)


def _approve(args: argparse.Namespace) -> int:
    wait_s: float = args.wait
    expires_s: float = args.expires if args.expires is not None else wait_s
    body: dict[str, Any] = {
        "title": args.title,
        "description": args.description or args.title,
        "expires_in_minutes": min(7 * 24 * 60, max(expires_s / 60, 1 / 60)),
        "source": args.source,
    }
    if args.option:
        body["options"] = args.option
    if args.callback_url:
        body["callback_url"] = args.callback_url
    # One key per run: a retried POST (network blip) asks once.
    idempotency_key = args.idempotency_key or f"cli-{uuid.uuid4().hex}"
    gateway = Gateway.from_env()
    try:
        created = gateway.request(
            "POST", "/v1/approvals", json=body, headers={"Idempotency-Key": idempotency_key}
        )
        approval_id = str(created["approval_id"])
        print(f"approval {approval_id} sent; waiting up to {wait_s:g} s", file=sys.stderr)
        deadline = time.monotonic() + wait_s
        approval: dict[str, Any] = {"approval_id": approval_id, "status": "pending"}
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            poll = min(MAX_POLL_S, max(remaining, 0.5))
            approval = gateway.request(
                "GET", f"/v1/approvals/{approval_id}", params={"wait": f"{poll:.3f}"}
            )
            if approval.get("status") != "pending":
                break
    finally:
        gateway.close()
    print(describe(approval))
    return exit_code_of(str(approval.get("status")))


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            code: int = command(args)
        except UsageError as error:
            print(f"cctelegram {args.command}: {error}", file=sys.stderr)
            return EXIT_USAGE
        return code

    return run


class _UsageExit(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; a job must tell that from "expired" (also 2)."""

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def register(subparsers: Any) -> None:
    notify = subparsers.add_parser(
        "notify",
        help="send a notification (CCTELEGRAM_URL, CCTELEGRAM_API_KEY)",
        description="Send TEXT to Telegram: the first line is the headline.",
    )
    notify.add_argument("text", metavar="TEXT")
    notify.add_argument("--type", default="info_notification", help="event type (default info)")
    notify.add_argument("--project", help="project name (routing and the message's data)")
    notify.add_argument("--source", default="cctelegram-cli", help="who sends it")
    notify.add_argument("--idempotency-key", help="same key = sent once, however often run")
    notify.set_defaults(func=_guarded(_notify))

    approve = subparsers.add_parser(
        "approve",
        help="ask for an approval and exit 0 approved / 1 rejected / 2 expired / 3 error",
        description="Ask people on Telegram to decide, wait, print the decision. Exit codes: "
        "0 approved (or a custom option), 1 rejected, 2 expired, cancelled or the wait ran "
        "out, 3 usage or authentication error.",
    )
    approve.add_argument("--title", required=True)
    approve.add_argument("--description")
    approve.add_argument(
        "--option", action="append", help="a button (repeat; default Approve and Deny)"
    )
    approve.add_argument(
        "--wait",
        type=parse_duration,
        default=parse_duration("30m"),
        help="how long to wait for a decision: 90s, 30m, 2h (default 30m)",
    )
    approve.add_argument(
        "--expires",
        type=parse_duration,
        help="when the approval itself expires (default: when the wait runs out)",
    )
    approve.add_argument("--callback-url", help="also POST the decision here (webhook)")
    approve.add_argument("--source", default="cctelegram-cli")
    approve.add_argument("--idempotency-key", help="same key = one approval, however often run")
    approve.set_defaults(func=_guarded(_approve))
    for parser in (notify, approve):
        parser.__class__ = _UsageExit
