"""The routes file (``CCTELEGRAM_ROUTES_FILE``, YAML): bots and the route rules to seed.

```yaml
bots:                      # name → token (or TELEGRAM_BOT_TOKENS=name=token,...)
  ops: "123456:AAA..."
routes:
  - name: api-alerts
    projects: [api]
    min_severity: high
    bot: ops
    chat_id: -1001234567890
    topic: per-project
```
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from cctelegram_common.contracts.routing import BOT_NAME_PATTERN, RoutesFile

ROUTES_FILE_ENV = "CCTELEGRAM_ROUTES_FILE"


class RoutesFileError(ValueError):
    """The file is missing or invalid; the message names the field (never a token)."""


def load_routes_file(path: str | Path | None = None) -> RoutesFile | None:
    """The parsed file, or None when no file is configured."""
    location = path if path is not None else os.environ.get(ROUTES_FILE_ENV)
    if not location:
        return None
    try:
        raw = yaml.safe_load(Path(location).read_text("utf-8")) or {}
    except OSError as error:
        raise RoutesFileError(f"routes file {location}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RoutesFileError(f"routes file {location}: not valid YAML ({error})") from None
    try:
        return RoutesFile.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors(include_input=False)
        )
        raise RoutesFileError(f"routes file {location}: {problems}") from None


def parse_bot_tokens(value: str) -> dict[str, str]:
    """``TELEGRAM_BOT_TOKENS``: ``name=token,name=token`` (a token has a colon, not '=')."""
    bots: dict[str, str] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, token = part.partition("=")
        if not sep or not name.strip() or not token.strip():
            raise RoutesFileError("TELEGRAM_BOT_TOKENS: each entry is name=token")
        bots[name.strip()] = token.strip()
    for name in bots:
        # The names only, never the tokens: this message may end up in a crash log.
        if not re.fullmatch(BOT_NAME_PATTERN, name):
            raise RoutesFileError(
                f"TELEGRAM_BOT_TOKENS: bot name {name!r}: lower-case letters, digits, _ and -"
            )
    return bots
