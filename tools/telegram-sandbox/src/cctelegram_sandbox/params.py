"""Reading Bot API parameters leniently, the way Telegram's server does."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile

from .errors import bad_request

_TRUE = frozenset({"true", "1", "yes", "on"})


class Params:
    """A request's parameters from the query string and any kind of body."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        return self.values.get(name)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, UploadFile):
            return None
        return json.dumps(value)

    def integer(self, name: str) -> int | None:
        """An integer, or None when missing; garbage reads as None like Telegram's to_integer."""
        value = self.values.get(name)
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return None
        return None

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            return value.strip().lower() in _TRUE
        return False

    def json(self, name: str) -> Any:
        """A nested object: JSON already, or a JSON string in query/form/multipart bodies."""
        value = self.values.get(name)
        if isinstance(value, str):
            if not value:
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {name} JSON object") from None
        return value

    def upload(self, name: str) -> UploadFile | None:
        value = self.values.get(name)
        return value if isinstance(value, UploadFile) else None

    def summary(self) -> dict[str, Any]:
        """The parameters for the calls log, with uploads described instead of kept."""
        if not any(isinstance(value, UploadFile) for value in self.values.values()):
            return self.values
        return {
            name: (
                {"upload": value.filename, "content_type": value.content_type}
                if isinstance(value, UploadFile)
                else value
            )
            for name, value in self.values.items()
        }
