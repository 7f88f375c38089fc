"""Writes the AsyncAPI 3.0 document of the NATS contract (``make asyncapi``), made from the
contracts of the installed services (``catalog.channels``): what a service subscribes is
what the document says, by construction."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel

from cctelegram_common import __version__
from cctelegram_common.catalog import Channel, channels, watches


def _consumer_for(model: type[BaseModel] | None) -> Callable[[Any], Awaitable[None]]:
    async def consume(body: Any) -> None:  # documentation only; never runs
        return None

    consume.__annotations__ = {"body": model or bytes, "return": None}
    return consume


def _describe(channel: Channel) -> str:
    if channel.kind == "watch":
        return (
            f"{channel.description} Kind: watch (an ephemeral ordered consumer of stored "
            f"data, one per replica while it reads). Watched by {', '.join(channel.consumers)}."
        )
    text = (
        f"{channel.description} Kind: {channel.kind}. "
        f"Published by {', '.join(channel.publishers)}; "
        f"consumed by {', '.join(channel.consumers)}."
    )
    if channel.stream:
        text += f" Stored in stream {channel.stream}."
    if channel.reply is not None:
        text += f" Replies with RpcReply(result={channel.reply.__name__})."
    return text


def build_document() -> str:
    broker = NatsBroker("nats://127.0.0.1:4222", description="CCTelegram NATS contract")
    for channel in channels():
        broker.subscriber(channel.subject, title=channel.subject, description=_describe(channel))(
            _consumer_for(channel.payload)
        )
        broker.publisher(
            channel.subject,
            title=f"{channel.subject}:publish",
            description=_describe(channel),
            schema=channel.payload,
        )
    for watch in watches():
        title = f"{watch.subject}:watch:{watch.consumers[0]}"
        broker.subscriber(watch.subject, title=title, description=_describe(watch))(
            _consumer_for(watch.payload)
        )
    specification = AsyncAPI(
        broker,
        title="CCTelegram",
        version=__version__,
        description="Commands, events and RPCs exchanged by the CCTelegram services.",
        schema_version="3.0.0",
    )
    return specification.to_specification().to_json()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    document = build_document()
    if args:
        target = Path(args[0])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document + "\n")
        print(f"wrote {target}")  # noqa: T201 - a command's answer
    else:
        print(document)  # noqa: T201


if __name__ == "__main__":
    main()
