"""``cctelegram up``: the whole suite on one machine — NATS, five services, the sandbox.

The command itself: read the configuration (``config``), start the stack (``stack``), print
the block (``banner``), report children that die, and stop everything on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator

from cctelegram_cli.up.banner import print_banner, print_error, print_exited, print_stopping
from cctelegram_cli.up.config import UpError, add_arguments, config_from_args
from cctelegram_cli.up.stack import start, watch


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start NATS, the five services and (without a bot token) the Telegram sandbox",
        description="Run the whole suite locally. Every flag also reads its environment name.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run_up)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    def raise_interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_up(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except UpError as error:
        print_error(error)
        return 2
    with _signals_raise():
        try:
            stack, endpoints = start(config)
        except UpError as error:
            print_error(error)
            return 1
        except KeyboardInterrupt:
            return 130
        try:
            print_banner(endpoints, config)
            # The stack keeps running until Ctrl-C / SIGTERM; a child that dies is reported.
            for child, code in watch(stack):
                print_exited(child.name, code, child.last_log_line())
        except KeyboardInterrupt:
            # A signal can land anywhere from here on, even while the banner is printed.
            print_stopping()
        finally:
            # Further Ctrl-C / SIGTERM must not cut the orderly stop short (it is bounded).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stack.stop()
    return 0
