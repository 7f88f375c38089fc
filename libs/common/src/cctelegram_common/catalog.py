"""The NATS contract of the whole suite as data: every channel, its payload, who publishes
and who consumes — merged from the ``ServiceContract`` of every installed service (the
``cctelegram.contracts`` entry points), never written by hand. ``make asyncapi`` turns it
into the AsyncAPI document; the NATS permissions test derives each user's rights from it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.metadata import entry_points

from pydantic import BaseModel

from cctelegram_common.messaging import ENTRY_POINT_GROUP, ServiceContract


@dataclass(frozen=True)
class Channel:
    subject: str
    payload: type[BaseModel] | None
    kind: str  # command | event | rpc | broadcast | watch
    publishers: tuple[str, ...]
    consumers: tuple[str, ...]
    description: str
    stream: str | None = None
    reply: type[BaseModel] | None = None


def installed_contracts() -> list[ServiceContract]:
    """The contract of every service installed in this environment, by service name."""
    found = [entry.load() for entry in entry_points(group=ENTRY_POINT_GROUP)]
    contracts = [contract for contract in found if isinstance(contract, ServiceContract)]
    return sorted(contracts, key=lambda contract: contract.service)


def _consumed(contract: ServiceContract) -> Iterable[Channel]:
    """The channels a contract's service takes messages from: its RPCs, consumers, listeners."""
    service = (contract.service,)
    for rpc in contract.rpcs:
        yield Channel(
            rpc.subject, rpc.request, "rpc", rpc.callers, service, rpc.description, None, rpc.reply
        )
    for consume in contract.consumes:
        yield Channel(
            consume.channel,
            consume.payload,
            consume.kind,
            consume.publishers,
            service,
            consume.description,
            consume.stream,
        )
    for listen in contract.listens:
        yield Channel(
            listen.subject,
            listen.payload,
            "broadcast",
            listen.publishers,
            service,
            listen.description,
        )


def _published(contract: ServiceContract) -> Iterable[Channel]:
    """What a contract's service only publishes (its readers are declared elsewhere or are
    outside the suite)."""
    for published in contract.publishes:
        yield Channel(
            published.subject,
            published.payload,
            published.kind,
            (contract.service,),
            published.consumers,
            published.description,
            published.stream,
        )


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def channels(contracts: Iterable[ServiceContract] | None = None) -> list[Channel]:
    """Every channel of the suite. A subject declared by several services (a broadcast its
    sender publishes and its listeners hear, the audit trail every service writes) is one
    channel: the consuming side describes it, publishers and consumers add up."""
    declared = installed_contracts() if contracts is None else list(contracts)
    merged: dict[str, Channel] = {}
    for channel in (c for contract in declared for c in _consumed(contract)):
        known = merged.get(channel.subject)
        merged[channel.subject] = channel if known is None else _joined(known, channel)
    for channel in (c for contract in declared for c in _published(contract)):
        known = merged.get(channel.subject)
        merged[channel.subject] = channel if known is None else _joined(known, channel)
    return sorted(merged.values(), key=lambda channel: channel.subject)


def _joined(known: Channel, other: Channel) -> Channel:
    return replace(
        known,
        publishers=_union(known.publishers, other.publishers),
        consumers=_union(known.consumers, other.consumers),
    )


def watches(contracts: Iterable[ServiceContract] | None = None) -> list[Channel]:
    """The ephemeral views services keep of stored data (not channels anyone publishes to)."""
    declared = installed_contracts() if contracts is None else list(contracts)
    return [
        Channel(watch.subject, watch.payload, "watch", (), (contract.service,), watch.description)
        for contract in declared
        for watch in contract.watches
    ]
