"""The ``cctelegram`` command: ``up`` (local runtime), ``stdio``, ``keys``, ``provision``,
``notify`` and ``approve`` (for CI jobs).

Each subcommand is a module here exposing ``register(subparsers)``; it sets ``func`` on its
parser to a callable ``(argparse.Namespace) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMAND_MODULES = ("up", "stdio", "keys", "provision", "claude_code", "pipelines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cctelegram", description="CCTelegram: reach people on Telegram from AI agents."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"cctelegram_cli.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"cctelegram_cli.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
