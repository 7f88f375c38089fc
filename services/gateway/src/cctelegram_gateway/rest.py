"""REST twins of the tools, generated from the same registry: ``/v1/...`` with OpenAPI.

POST tools take the input model as the JSON body; GET tools take it as query parameters.
Every refusal uses the gateway's one error shape, validation errors name the field.
"""

from __future__ import annotations

import inspect
import math
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from cctelegram_common.contracts.auth import Principal
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.errors import CODE_OF_STATUS, ERROR_RESPONSES, ErrorCode, error_bytes
from cctelegram_gateway.registry import ToolError, ToolRegistry, ToolSpec


def request_id_of(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "")


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def error_response(
    request: Request,
    status: int,
    code: ErrorCode,
    message: str,
    *,
    field: str | None = None,
    retry_after_s: float | None = None,
) -> Response:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    body = error_bytes(code, message, request_id_of(request), field, retry_after_s)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _refusal(request: Request, refused: ToolError) -> Response:
    status = refused.status if 400 <= refused.status <= 599 else 400
    return error_response(
        request,
        status,
        refused.code,
        refused.message,
        field=refused.field,
        retry_after_s=refused.retry_after_s,
    )


def _has_required_fields(model: type[BaseModel]) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


def _gate(spec: ToolSpec[Any, Any], runner: ToolRunner) -> Any:
    """A route dependency: FastAPI runs it before validating the body, so a caller without
    the permission gets 403 (not a 422 that would describe the tool's arguments)."""

    async def gate(request: Request) -> None:
        principal = principal_of(request)
        request_id = request_id_of(request)
        runner.authorize(principal, spec.permission, f"tool '{spec.name}'", request_id)
        await runner.spend(principal, spec.name, request_id)

    return gate


def _endpoint(spec: ToolSpec[Any, Any], runner: ToolRunner) -> Any:
    async def endpoint(request: Request, arguments: Any = None) -> Any:
        principal = principal_of(request)
        request_id = request_id_of(request)
        try:
            parsed = arguments if arguments is not None else runner.parse(spec, {})
            result = await runner.call(spec, principal, request_id, parsed=parsed, gated=True)
        except ToolError as refused:
            return _refusal(request, refused)
        return JSONResponse(result.model_dump(mode="json"))

    if spec.rest_method.upper() == "GET":
        annotation: Any = Annotated[spec.input_model, Query()]
        default: Any = inspect.Parameter.empty if _has_required_fields(spec.input_model) else None
    else:
        annotation = Annotated[spec.input_model, Body()]
        default = inspect.Parameter.empty if _has_required_fields(spec.input_model) else None
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
            inspect.Parameter(
                "arguments",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                annotation=annotation,
                default=default,
            ),
        ]
    )
    return endpoint


def add_tool_routes(app: FastAPI, registry: ToolRegistry, runner: ToolRunner) -> None:
    for spec in registry:
        method = spec.rest_method.upper()
        app.add_api_route(
            spec.route,
            _endpoint(spec, runner),
            methods=[method],
            name=spec.name,
            operation_id=spec.name,
            summary=spec.name,
            description=spec.description,
            response_model=spec.output_model,
            responses=ERROR_RESPONSES,
            tags=["tools"],
            dependencies=[Depends(_gate(spec, runner))],
        )


def install_error_handlers(app: FastAPI) -> None:
    """FastAPI's own errors (validation, 404, 405) in the gateway's error shape."""

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(request, 422, "invalid", "the body is not valid JSON")
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
        field = ".".join(location) or None
        rule = str(first.get("msg", "invalid"))
        message = f"{field}: {rule}" if field else rule
        return error_response(request, 422, "invalid", message, field=field)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        message = str(error.detail) if error.detail else "error"
        return error_response(request, status, CODE_OF_STATUS.get(status, "invalid"), message)

    async def on_refused(request: Request, error: Exception) -> Response:
        assert isinstance(error, ToolError)
        return _refusal(request, error)

    app.add_exception_handler(ToolError, on_refused)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
