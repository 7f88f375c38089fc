"""`cctelegram-anthropic-standin`: run the stand-in as a foreground server (for benches and by
hand). Scripts come from `--scripts FILE` (a JSON list of `{"name", "turns"}`) or later through
`POST /standin/scripts`; recorded requests are at `GET /standin/requests[?script=NAME]`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .app import parse_script_json
from .server import Standin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cctelegram-anthropic-standin",
        description="A scripted stand-in of the Anthropic Messages API (test tool).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument("--scripts", type=Path, help='JSON file: [{"name": ..., "turns": [...]}]')
    args = parser.parse_args(argv)
    standin = Standin(args.host, args.port)
    if args.scripts is not None:
        try:
            for item in json.loads(args.scripts.read_text()):
                standin.add_script(*parse_script_json(item))
        except (OSError, TypeError, ValueError) as exc:
            parser.error(f"--scripts: {exc}")
    standin.start()
    sys.stdout.write(f"cctelegram-anthropic-standin listening on {standin.url}\n")
    sys.stdout.flush()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    standin.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
