"""The one tool registry: each tool is defined once; MCP and REST are adapters over it.

A tool is a typed async function ``(ToolContext, InputModel) -> OutputModel`` plus its name,
description, permission and REST route. Input and output models live in ``libs/common`` or
next to the tool; their field descriptions become the MCP schemas and the OpenAPI document.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_type_hints

from faststream.nats import NatsBroker
from pydantic import BaseModel

from cctelegram_common.contracts.auth import Permission, Principal
from cctelegram_gateway.errors import ToolError

__all__ = ["ResourceSpec", "ToolContext", "ToolError", "ToolRegistry", "ToolSpec", "registry"]

if TYPE_CHECKING:
    from cctelegram_gateway.readmodels import EventsReadModels

InputT = TypeVar("InputT", bound=BaseModel)

# Set by the MCP layer for a call of a ``streams`` tool whose client asked for progress:
# a long wait calls it now and then, so the stream stays visibly alive.
current_progress: contextvars.ContextVar[Callable[[str], Awaitable[None]] | None] = (
    contextvars.ContextVar("current_progress", default=None)
)
OutputT = TypeVar("OutputT", bound=BaseModel)


@dataclass
class ToolContext:
    """What a tool handler may use: who calls, the request id, the NATS connection, and the
    read port onto the events service's read models."""

    principal: Principal
    request_id: str
    broker: NatsBroker
    reads: EventsReadModels
    extras: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[ToolContext, InputT], Awaitable[OutputT]]


@dataclass(frozen=True)
class ToolSpec(Generic[InputT, OutputT]):
    name: str
    description: str
    input_model: type[InputT]
    output_model: type[OutputT]
    permission: Permission
    handler: Handler[InputT, OutputT]
    rest_method: str = "POST"
    rest_path: str = ""
    read_only: bool = False
    # The result is one JSON text block and nothing else (Claude Code's permission prompt
    # tool rejects structured content); no output schema is declared for it.
    text_only: bool = False
    # May wait minutes for a person: answered over an SSE stream when the client takes one
    # (Claude Code gives up on a plain JSON response after 60 s).
    streams: bool = False

    @property
    def route(self) -> str:
        return self.rest_path or f"/v1/tools/{self.name}"


ResourceHandler = Callable[[ToolContext], Awaitable[BaseModel | str]]


@dataclass(frozen=True)
class ResourceSpec:
    """An MCP resource (``cctelegram://...``), read-only, with the permission it needs."""

    uri: str
    name: str
    description: str
    permission: Permission
    handler: ResourceHandler
    mime_type: str = "application/json"


class ToolRegistry:
    """Name → ToolSpec (and URI → ResourceSpec), in registration order."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolSpec[Any, Any]] = {}
        self.resources: dict[str, ResourceSpec] = {}

    def resource(
        self, uri: str, *, name: str, description: str, permission: Permission
    ) -> Callable[[ResourceHandler], ResourceHandler]:
        """Decorator registering a resource handler ``(ToolContext) -> model | str``."""

        def register(handler: ResourceHandler) -> ResourceHandler:
            if uri in self.resources:
                raise ValueError(f"resource {uri} registered twice")
            self.resources[uri] = ResourceSpec(uri, name, description, permission, handler)
            return handler

        return register

    def add(self, spec: ToolSpec[Any, Any]) -> None:
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name} registered twice")
        self._tools[spec.name] = spec

    def tool(
        self,
        name: str,
        *,
        description: str,
        permission: Permission,
        rest_method: str = "POST",
        rest_path: str = "",
        read_only: bool = False,
        text_only: bool = False,
        streams: bool = False,
    ) -> Callable[[Handler[InputT, OutputT]], Handler[InputT, OutputT]]:
        """Decorator: input and output models are read from the handler's annotations."""

        def register(handler: Handler[InputT, OutputT]) -> Handler[InputT, OutputT]:
            hints = get_type_hints(handler)
            parameter_names = [key for key in hints if key != "return"]
            input_model = hints[parameter_names[-1]]
            output_model = hints["return"]
            self.add(
                ToolSpec(
                    name=name,
                    description=description,
                    input_model=input_model,
                    output_model=output_model,
                    permission=permission,
                    handler=handler,
                    rest_method=rest_method,
                    rest_path=rest_path,
                    read_only=read_only,
                    text_only=text_only,
                    streams=streams,
                )
            )
            return handler

        return register

    def get(self, name: str) -> ToolSpec[Any, Any] | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[ToolSpec[Any, Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def streamed_names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self._tools.values() if spec.streams)

    def visible_to(self, principal: Principal) -> list[ToolSpec[Any, Any]]:
        """The tools this caller may call (MCP lists only these)."""
        return [spec for spec in self if principal.can(spec.permission)]


# The process-wide registry; tool modules under ``cctelegram_gateway.tools`` register here.
registry = ToolRegistry()
