"""One tool call, whichever surface it came in on: permission, rate limit, validation, run.

MCP and REST both call ``ToolRunner.call``; they differ only in how they present the
outcome (``isError`` results vs HTTP statuses). Every refusal is a ``ToolError`` (``errors.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faststream.nats import NatsBroker
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from cctelegram_common.contracts.audit import AuditOutcome
from cctelegram_common.contracts.auth import Permission, Principal
from cctelegram_common.logging import get_logger
from cctelegram_gateway import metrics
from cctelegram_gateway.auditing import Auditor
from cctelegram_gateway.errors import ToolError
from cctelegram_gateway.ratelimit import SharedRateLimiter
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ResourceSpec, ToolContext, ToolSpec

log = get_logger(__name__)

# The old name of the one refusal type, kept so code written against it (``except
# CallRefusedError``) keeps working; it is ``ToolError`` itself, not a second type.
CallRefusedError = ToolError


def describe_validation_error(error: ValidationError) -> tuple[str | None, str]:
    """(field, "field: rule") of the first problem, in words a model or a person can fix."""
    first = error.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    rule = first["msg"]
    return field, f"{field}: {rule}" if field else rule


def forbidden(principal: Principal, permission: Permission, what: str) -> ToolError:
    return ToolError(
        f"permission '{permission.value}' is required for {what}; "
        f"this key's role '{principal.role.value}' does not have it",
        code="forbidden",
    )


@dataclass
class ToolRunner:
    broker: NatsBroker
    reads: EventsReadModels
    limiter: SharedRateLimiter
    auditor: Auditor
    # Read-only configuration tools may need (e.g. "claude_code": ClaudeCodeSettings).
    extras: dict[str, Any] = field(default_factory=dict)

    def authorize(self, principal: Principal, permission: Permission, what: str, rid: str) -> None:
        if principal.can(permission):
            return
        self.auditor.record(
            "permission.denied",
            AuditOutcome.DENIED,
            client_id=principal.client_id,
            key_id=principal.key_id,
            request_id=rid,
            target=what,
            reason=f"needs {permission.value}",
        )
        raise forbidden(principal, permission, what)

    async def spend(self, principal: Principal, what: str, rid: str) -> None:
        retry_after_s = await self.limiter.take(principal)
        if retry_after_s is None:
            return
        retry_after_s = round(max(retry_after_s, 0.001), 3)
        metrics.RATE_LIMIT_VIOLATIONS.inc()
        self.auditor.record(
            "rate_limited",
            AuditOutcome.DENIED,
            client_id=principal.client_id,
            key_id=principal.key_id,
            request_id=rid,
            target=what,
            coalesce=True,
        )
        raise ToolError(
            f"rate limit of {self.limiter.limit_of(principal)} calls/minute reached; "
            f"retry in {retry_after_s:.3f} s",
            code="rate_limited",
            retry_after_s=retry_after_s,
        )

    def parse(self, spec: ToolSpec[Any, Any], arguments: object) -> BaseModel:
        try:
            parsed: BaseModel = spec.input_model.model_validate(
                arguments if arguments is not None else {}
            )
        except ValidationError as error:
            field, message = describe_validation_error(error)
            raise ToolError(message, code="invalid", field=field) from None
        return parsed

    def context(self, principal: Principal, request_id: str) -> ToolContext:
        return ToolContext(
            principal=principal,
            request_id=request_id,
            broker=self.broker,
            reads=self.reads,
            extras=self.extras,
        )

    async def call(
        self,
        spec: ToolSpec[Any, Any],
        principal: Principal,
        request_id: str,
        arguments: object = None,
        parsed: BaseModel | None = None,
        *,
        gated: bool = False,
    ) -> BaseModel:
        """Run one tool. Raises ``ToolError`` for the caller to see;
        anything else is logged here and surfaces as a generic internal error.

        ``gated``: permission and rate limit were already applied (REST does that first).
        """
        # The MCP SDK already opens a "tools/call <name>" span (REST: the HTTP server span);
        # tag that span with who called rather than paying for one more span per call.
        span = trace.get_current_span()
        span.set_attributes(
            {
                "mcp.tool.name": spec.name,
                "cctelegram.client_id": principal.client_id,
                "cctelegram.request_id": request_id,
            }
        )
        try:
            result = await self._call(spec, principal, request_id, arguments, parsed, gated)
        except ToolError as refused:
            outcome = metrics.outcome_of(refused.code)
            metrics.TOOL_CALLS.labels(spec.name, outcome).inc()
            span.set_attribute("cctelegram.outcome", outcome)
            raise
        metrics.TOOL_CALLS.labels(spec.name, "ok").inc()
        span.set_attribute("cctelegram.outcome", "ok")
        return result

    async def _call(
        self,
        spec: ToolSpec[Any, Any],
        principal: Principal,
        request_id: str,
        arguments: object,
        parsed: BaseModel | None,
        gated: bool,
    ) -> BaseModel:
        if not gated:
            self.authorize(principal, spec.permission, f"tool '{spec.name}'", request_id)
            await self.spend(principal, spec.name, request_id)
        arguments_model = parsed if parsed is not None else self.parse(spec, arguments)
        try:
            result: BaseModel = await spec.handler(
                self.context(principal, request_id), arguments_model
            )
        except ToolError:
            raise
        except Exception as error:
            log.exception(
                "tool_failed", tool=spec.name, request_id=request_id, error=type(error).__name__
            )
            raise ToolError(f"internal error (request id {request_id})", code="internal") from None
        return result

    async def read(self, spec: ResourceSpec, principal: Principal, request_id: str) -> str:
        what = f"resource '{spec.uri}'"
        self.authorize(principal, spec.permission, what, request_id)
        await self.spend(principal, spec.uri, request_id)
        try:
            content = await spec.handler(self.context(principal, request_id))
        except ToolError:
            raise
        except Exception as error:
            log.exception(
                "resource_failed", uri=spec.uri, request_id=request_id, error=type(error).__name__
            )
            raise ToolError(f"internal error (request id {request_id})", code="internal") from None
        return content if isinstance(content, str) else content.model_dump_json()
