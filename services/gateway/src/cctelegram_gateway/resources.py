"""REST resources for pipelines and HTTP callers, as adapters over the same tool registry.

``POST /v1/events``, ``GET /v1/events/{id}``, ``POST /v1/approvals``,
``GET /v1/approvals/{id}?wait=SECONDS``, ``POST /v1/approvals/{id}/cancel``,
``GET /v1/responses``, ``GET /v1/bridge``, ``POST /v1/bridge/{start|stop|restart}`` and
``POST /v1/keys/{id}/webhook-secret``. Each route names the tool it runs: the permission
check (before the body is validated), rate limit, validation, handler, metrics and error
shape are the tool's (``ToolRunner``); only the HTTP shape differs (path parameters, 201 +
``Location`` on create, the ``Idempotency-Key`` header).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.bridge import BridgeControlResult, BridgeStatus
from cctelegram_common.contracts.responses import ResponsesPage
from cctelegram_common.contracts.tools import (
    ID_PATTERN,
    ApprovalView,
    EventStatusView,
    SendApprovalRequestInput,
    SendApprovalResult,
    SendEventInput,
    SendResult,
    WaitForApprovalResult,
)
from cctelegram_common.contracts.webhooks import CreatedWebhookSecret
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.errors import ERROR_RESPONSES
from cctelegram_gateway.registry import ToolError, ToolRegistry
from cctelegram_gateway.rest import _refusal, principal_of, request_id_of

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])
TAG = "resources"
MAX_WAIT_S = 120.0
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Same key (per client) = the same record, however often the request is "
        "retried; same as the body's idempotency_key",
    ),
]
RecordId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
KeyId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{12}$", description="The key's id")]

EVENT_EXAMPLE = {
    "type": "build_completed",
    "title": "Build 1432 passed",
    "description": "main @ 3f2a1c0: 412 tests in 3 m 12 s",
    "source": "github-actions",
}
APPROVAL_EXAMPLE = {
    "title": "Deploy api 2.4.0 to production?",
    "description": "Pipeline 8812 passed; canary healthy for 10 minutes.",
    "options": ["Approve", "Reject"],
    "expires_in_minutes": 30,
    "source": "gitlab-ci",
    "callback_url": "https://ci.example.com/hooks/cctelegram",
}


class CancelBody(Contract):
    reason: str | None = Field(default=None, max_length=500, description="Shown on the card")


def _created(model: BaseModel, location: str) -> Response:
    return JSONResponse(
        model.model_dump(mode="json"), status_code=201, headers={"Location": location}
    )


def _merge_idempotency(body: dict[str, Any], header: str | None) -> dict[str, Any]:
    if header is None:
        return body
    given = body.get("idempotency_key")
    if given is not None and given != header:
        raise ToolError(
            "idempotency_key: differs from the Idempotency-Key header",
            status=422,
            field="idempotency_key",
        )
    return {**body, "idempotency_key": header}


def add_resource_routes(app: FastAPI, registry: ToolRegistry, runner: ToolRunner) -> None:
    def spec_of(tool: str) -> Any:
        spec = registry.get(tool)
        if spec is None:
            raise LookupError(f"resource route over unknown tool {tool}")
        return spec

    def gate(tool: str) -> Any:
        """Permission and rate limit before FastAPI validates the body (see rest._gate)."""
        spec = spec_of(tool)

        async def check(request: Request) -> None:
            principal = principal_of(request)
            request_id = request_id_of(request)
            runner.authorize(principal, spec.permission, f"tool '{spec.name}'", request_id)
            await runner.spend(principal, spec.name, request_id)

        return Depends(check)

    async def run(
        request: Request,
        tool: str,
        arguments: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> BaseModel | Response:
        spec = spec_of(tool)
        try:
            parsed = runner.parse(spec, _merge_idempotency(arguments, idempotency_key))
            return await runner.call(
                spec, principal_of(request), request_id_of(request), parsed=parsed, gated=True
            )
        except ToolError as refused:
            return _refusal(request, refused)

    def route(method: str, path: str, tool: str, **extra: Any) -> Callable[[EndpointT], EndpointT]:
        spec = spec_of(tool)
        decorator: Callable[[EndpointT], EndpointT] = app.api_route(
            path,
            methods=[method],
            tags=[TAG],
            responses=ERROR_RESPONSES,
            dependencies=[gate(tool)],
            description=f"{spec.description}\n\nRuns the tool `{tool}` (permission "
            f"`{spec.permission.value}`).",
            openapi_extra={"x-cctelegram-tool": tool},
            **extra,
        )
        return decorator

    @route(
        "POST",
        "/v1/events",
        "send_telegram_event",
        operation_id="create_event",
        summary="Send a notification",
        status_code=201,
        response_model=SendResult,
    )
    async def create_event(
        request: Request,
        event: Annotated[
            SendEventInput, Body(openapi_examples={"build": {"value": EVENT_EXAMPLE}})
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        body = event.model_dump(exclude_unset=True)
        result = await run(request, "send_telegram_event", body, idempotency_key)
        if isinstance(result, Response):
            return result
        assert isinstance(result, SendResult)
        return _created(result, f"/v1/events/{result.event_id}")

    @route(
        "GET",
        "/v1/events/{event_id}",
        "get_event_status",
        operation_id="get_event",
        summary="Delivery state of an event",
        response_model=EventStatusView,
    )
    async def get_event(request: Request, event_id: RecordId) -> Any:
        return await run(request, "get_event_status", {"event_id": event_id})

    @route(
        "POST",
        "/v1/approvals",
        "send_approval_request",
        operation_id="create_approval",
        summary="Ask people to decide",
        status_code=201,
        response_model=SendApprovalResult,
    )
    async def create_approval(
        request: Request,
        approval: Annotated[
            SendApprovalRequestInput,
            Body(openapi_examples={"deploy gate": {"value": APPROVAL_EXAMPLE}}),
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        body = approval.model_dump(exclude_unset=True)
        result = await run(request, "send_approval_request", body, idempotency_key)
        if isinstance(result, Response):
            return result
        assert isinstance(result, SendApprovalResult)
        return _created(result, f"/v1/approvals/{result.approval_id}")

    @route(
        "GET",
        "/v1/approvals/{approval_id}",
        "get_approval",
        operation_id="get_approval_resource",
        summary="An approval; with ?wait=SECONDS, as soon as it is decided",
        response_model=ApprovalView,
    )
    async def get_approval(
        request: Request,
        approval_id: RecordId,
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=MAX_WAIT_S,
                description="Long-poll: answer as soon as the approval is decided, expired "
                "or cancelled, or after this many seconds (status still pending). 0 = now.",
                openapi_examples={"long-poll": {"value": 60}, "now": {"value": 0}},
            ),
        ] = 0,
    ) -> Any:
        if wait <= 0:
            return await run(request, "get_approval", {"approval_id": approval_id})
        waited = await run(
            request, "wait_for_approval", {"approval_id": approval_id, "timeout_seconds": wait}
        )
        if isinstance(waited, WaitForApprovalResult):
            return waited.approval
        return waited

    @route(
        "POST",
        "/v1/approvals/{approval_id}/cancel",
        "cancel_approval",
        operation_id="cancel_approval_resource",
        summary="Withdraw an open approval",
        response_model=ApprovalView,
    )
    async def cancel_approval(
        request: Request, approval_id: RecordId, cancel: CancelBody | None = None
    ) -> Any:
        reason = cancel.reason if cancel is not None else None
        return await run(request, "cancel_approval", {"approval_id": approval_id, "reason": reason})

    @route(
        "GET",
        "/v1/responses",
        "get_telegram_responses",
        operation_id="list_responses",
        summary="People's answers, newest first",
        response_model=ResponsesPage,
    )
    async def list_responses(
        request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 10
    ) -> Any:
        return await run(request, "get_telegram_responses", {"limit": limit})

    @route(
        "GET",
        "/v1/bridge",
        "get_bridge_status",
        operation_id="get_bridge",
        summary="The bridge's status",
        response_model=BridgeStatus,
    )
    async def get_bridge(request: Request) -> Any:
        return await run(request, "get_bridge_status", {})

    @route(
        "POST",
        "/v1/bridge/{action}",
        "start_bridge",  # start, stop and restart need the same permission
        operation_id="control_bridge",
        summary="Start, stop or restart delivery",
        response_model=BridgeControlResult,
    )
    async def control_bridge(
        request: Request, action: Annotated[Literal["start", "stop", "restart"], Path()]
    ) -> Any:
        return await run(request, f"{action}_bridge", {})

    @route(
        "POST",
        "/v1/keys/{key_id}/webhook-secret",
        "create_webhook_secret",
        operation_id="create_webhook_secret_resource",
        summary="Create the webhook signing secret of the key's client (shown once)",
        status_code=201,
        response_model=CreatedWebhookSecret,
    )
    async def create_webhook_secret(request: Request, key_id: KeyId) -> Any:
        result = await run(request, "create_webhook_secret", {"key_id": key_id})
        if isinstance(result, Response):
            return result
        return JSONResponse(result.model_dump(mode="json"), status_code=201)
