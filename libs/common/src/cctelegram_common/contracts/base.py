"""The base of every payload model: frozen, strict about unknown fields, documented."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    """A message on the wire. Frozen and ``extra="forbid"`` so typos fail loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def utc_now() -> datetime:
    """Timezone-aware now, the only clock format on the wire."""
    return datetime.now(UTC)
