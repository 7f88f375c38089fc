"""`cctelegram-sandbox` / `python -m cctelegram_sandbox`: run the sandbox as an HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .app import create_app
from .config import TOKEN_PATTERN, SandboxConfig
from .server import SandboxServer, bind_socket, socket_url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cctelegram-sandbox",
        description="A faithful local Telegram Bot API emulator with a chat view in the browser.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port (0 picks a free one)")
    parser.add_argument(
        "--token", default=None, help="the only accepted bot token (default: any well-formed)"
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="multiply Telegram's flood limits (2 = twice as many messages per window)",
    )
    parser.add_argument(
        "--no-flood-control", action="store_true", help="never answer 429 for flood limits"
    )
    parser.add_argument(
        "--auto-create-chats",
        action="store_true",
        help='create unknown chats on first use instead of answering "chat not found"',
    )
    parser.add_argument(
        "--strict-params",
        action="store_true",
        help="answer 400 to parameters a method does not define (Telegram ignores them)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="start with a private chat, a group and a forum"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)
    if args.token is not None and not TOKEN_PATTERN.fullmatch(args.token):
        parser.error("--token must look like <digits>:<20-64 characters of A-Za-z0-9_->")
    if args.rate_scale <= 0:
        parser.error("--rate-scale must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = SandboxConfig(
        token=args.token,
        rate_scale=args.rate_scale,
        flood_control=not args.no_flood_control,
        auto_create_chats=args.auto_create_chats,
        strict_params=args.strict_params,
        demo_chats=args.demo,
    )
    server = SandboxServer(create_app(config), log_level=args.log_level)
    sock = bind_socket(args.host, args.port)
    url = socket_url(sock)
    # Scripts and the test helper read this line to learn the port.
    sys.stdout.write(f"cctelegram-sandbox listening on {url}\n")
    sys.stdout.flush()
    sys.stderr.write(f"  web page: {url}/   Bot API: {url}/bot<token>/<method>\n")
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
