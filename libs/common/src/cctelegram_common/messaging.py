"""What a service does on NATS, declared once: the contract it serves, and what its connect
step hands the ``Service`` to serve it with.

Every service has a ``contract.py`` holding one ``ServiceContract``: the RPCs it answers, the
durable consumers it runs, the broadcasts it hears, the ephemeral views it watches and the
subjects it publishes that no service of the suite consumes. The ``Service`` subscribes
exactly what the contract declares (``Service.serve``), and the AsyncAPI document
(``cctelegram_common.asyncapi``) is generated from the same contracts, found through the
``cctelegram.contracts`` entry point group, so nothing is written twice and the running
subscriptions and the document cannot drift (``tests/integration/test_contract.py`` compares
them on a running suite).

How messages move, by measurement (see the README's figures):

- RPCs and broadcasts: FastStream subscribers (queue group per service for RPCs), with the
  suite's middlewares (trace, metrics, log context). The handler reads the raw body and
  ``parse_request`` validates it, so a malformed request is refused ``invalid`` with its field.
- Durable consumers: ``consumers.DurableConsumer``'s fetch loop on nats-py (FastStream's pull
  subscriber took a thread hop per message and could not batch); the notifier's outbox runs
  its own per-chat lanes over the same ``PullFetcher``.
- Publishing to a stream: ``nats.publish_to_stream`` (nats-py; FastStream's publish chain was
  ~10 % of the gateway's CPU per call). Core broadcasts: ``nats.broadcast``.
- Request-reply: ``nats.rpc_call`` (one envelope, one mapping of failures to refusals).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from cctelegram_common.nats import RpcResponder

if TYPE_CHECKING:
    from cctelegram_common.consumers import Durable

ENTRY_POINT_GROUP = "cctelegram.contracts"


@dataclass(frozen=True)
class Rpc:
    """A request-reply method the service answers (any one replica: the service's queue)."""

    subject: str
    request: type[BaseModel]
    reply: type[BaseModel]
    callers: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Consume:
    """A durable JetStream consumer the service runs (every replica shares it).

    ``durable`` may hold ``{placeholders}`` for consumers made per configured item (the
    notifier's outbox has one per bot); ``subject`` is the filter subject, with the same
    placeholders. ``own_loop``: the service runs it itself (the notifier's per-chat lanes)
    rather than through ``Bindings.durables``. ``kind``: a command (do this) or an event
    (this happened).
    """

    durable: str
    stream: str
    subject: str
    payload: type[BaseModel]
    publishers: tuple[str, ...]
    description: str
    kind: Literal["command", "event"] = "command"
    own_loop: bool = False
    # The channel's address in the document when ``subject`` is a wildcard filter
    # (``cctg.outbox.chat.>`` is the channel ``cctg.outbox.chat.{chat}``).
    address: str | None = None

    @property
    def channel(self) -> str:
        return self.address or self.subject


@dataclass(frozen=True)
class Listen:
    """A core NATS broadcast every replica hears (no queue group)."""

    subject: str
    payload: type[BaseModel]
    publishers: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Watch:
    """An ephemeral, per-replica ordered view of a stream or KV bucket (``subject`` is its
    filter: ``$KV.<bucket>.>`` for a bucket watch; ``payload`` None: keys only)."""

    subject: str
    description: str
    payload: type[BaseModel] | None = None


@dataclass(frozen=True)
class Publish:
    """A subject the service publishes whose readers are outside the suite's contracts
    (operators, nats-server's message schedules) or that other services consume under a
    different declaration. ``kind``: command, event or broadcast."""

    subject: str
    payload: type[BaseModel]
    kind: Literal["command", "event", "broadcast"]
    description: str
    stream: str | None = None
    consumers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceContract:
    """Everything one service does on NATS."""

    service: str
    rpc_queue: str = ""
    rpcs: tuple[Rpc, ...] = ()
    consumes: tuple[Consume, ...] = ()
    listens: tuple[Listen, ...] = ()
    watches: tuple[Watch, ...] = ()
    publishes: tuple[Publish, ...] = ()

    def __post_init__(self) -> None:
        if self.rpcs and not self.rpc_queue:
            raise ValueError(f"{self.service}: RPCs need a queue group")
        subjects = [rpc.subject for rpc in self.rpcs] + [lst.subject for lst in self.listens]
        if len(set(subjects)) != len(subjects):
            raise ValueError(f"{self.service}: a subject is declared twice")

    def consume(self, durable: str) -> Consume:
        """The declaration of one durable consumer, by its name."""
        for declared in self.consumes:
            if declared.durable == durable:
                return declared
        raise KeyError(f"{self.service} declares no consumer {durable}")


RpcMethod = Callable[[Any], Awaitable[BaseModel]]
Listener = Callable[[Any], Awaitable[None]]


class ContractError(RuntimeError):
    """The handlers a service built do not match its contract (a bug, caught at start)."""


@dataclass
class Bindings:
    """What a service's connect step hands to ``Service.connect_with``: one method per declared RPC
    (by subject; it receives the validated request), one ``Durable`` per declared consumer
    the service does not run itself, one listener per broadcast (it receives the validated
    payload), and how RPC failures become refusals."""

    responder: RpcResponder = field(
        default_factory=lambda: RpcResponder(internal_message="the request failed")
    )
    rpcs: Mapping[str, RpcMethod] = field(default_factory=dict)
    durables: Sequence[Durable[Any]] = ()
    listeners: Mapping[str, Listener] = field(default_factory=dict)

    def check(self, contract: ServiceContract) -> None:
        """Raise ``ContractError`` unless these bindings serve exactly ``contract``."""
        problems: list[str] = []

        def compare(what: str, declared: set[str], bound: set[str]) -> None:
            if declared - bound:
                problems.append(f"{what} declared but not bound: {sorted(declared - bound)}")
            if bound - declared:
                problems.append(f"{what} bound but not declared: {sorted(bound - declared)}")

        compare("RPCs", {rpc.subject for rpc in contract.rpcs}, set(self.rpcs))
        compare("listeners", {lst.subject for lst in contract.listens}, set(self.listeners))
        compare(
            "durables",
            {c.durable for c in contract.consumes if not c.own_loop},
            {durable.name for durable in self.durables},
        )
        for durable in self.durables:
            declared = next((c for c in contract.consumes if c.durable == durable.name), None)
            if declared is not None and (declared.subject, declared.stream) != (
                durable.subject,
                durable.stream,
            ):
                problems.append(f"durable {durable.name} reads other than it declares")
        if problems:
            raise ContractError(f"{contract.service}: " + "; ".join(problems))
