"""Composition root of the gateway: verifier, limiter, auditor, MCP and REST over the registry,
all behind the front-door middleware, served by the common ``Service`` runtime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from nats.js import JetStreamContext
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cctelegram_common import __version__, subjects
from cctelegram_common.audit import publish_audit
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.contracts.auth import KeyChanged, VerifyRequest, VerifyResponse
from cctelegram_common.http import HttpMetricsMiddleware
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import rpc_call
from cctelegram_common.service import Service
from cctelegram_common.telemetry import asgi_tracing, continued_trace
from cctelegram_gateway import metrics as gateway_metrics
from cctelegram_gateway import tools
from cctelegram_gateway.auditing import Auditor
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.contract import CONTRACT
from cctelegram_gateway.hooks import add_hook_routes
from cctelegram_gateway.integrations import add_integration_routes
from cctelegram_gateway.mcp_server import build_mcp_app, build_server, wants_stream
from cctelegram_gateway.middleware import GatewayMiddleware
from cctelegram_gateway.ratelimit import KvBudgetStore, SharedRateLimiter
from cctelegram_gateway.readmodels import EventsReadModels
from cctelegram_gateway.registry import ToolRegistry, registry
from cctelegram_gateway.resources import add_resource_routes
from cctelegram_gateway.rest import add_tool_routes, install_error_handlers
from cctelegram_gateway.settings import GatewaySettings
from cctelegram_gateway.uploads import FILES_PATH, UPLOAD_BODY, add_file_routes
from cctelegram_gateway.verifier import Verifier

SERVICE_NAME = CONTRACT.service
# The SDK logs every stateless request at INFO ("Terminating session: None"): noise and CPU.
logging.getLogger("mcp").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Gateway:
    """The gateway, fully assembled: its service lifecycle and the ASGI app it serves, with
    the parts tests and the bench reach into."""

    service: Service
    asgi: ASGIApp
    fastapi: FastAPI
    verifier: Verifier
    limiter: SharedRateLimiter
    auditor: Auditor

    async def connect_forever(self) -> None:
        await self.service.connect_forever()

    async def stop(self) -> None:
        await self.service.stop()


class McpFastPath:
    """``POST /mcp`` straight to the MCP transport; everything else through FastAPI.

    The hot path needs none of FastAPI's middleware stack (the front door already did auth,
    limits and error shapes), and skipping it is measurable CPU per call. The ``/mcp`` route
    stays registered in FastAPI for other methods (405) and for route-template metrics.
    """

    def __init__(
        self,
        api: ASGIApp,
        mcp_endpoint: ASGIApp,
        streamed_endpoint: ASGIApp | None = None,
        streamed_tools: frozenset[str] = frozenset(),
    ) -> None:
        self.api = api
        self.mcp_endpoint = mcp_endpoint
        self.streamed_endpoint = streamed_endpoint
        self.streamed_tools = streamed_tools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_mcp_post(scope):
            # What FastAPI would have set: the metrics middleware finds the route template
            # ("/mcp", not "other") through it.
            scope["app"] = self.api
            if self.streamed_endpoint is not None and wants_stream(
                dict(scope["headers"]), scope["state"].get("body"), self.streamed_tools
            ):
                await self.streamed_endpoint(scope, receive, send)
                return
            await self.mcp_endpoint(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def is_mcp_post(scope: Scope) -> bool:
    return bool(scope["type"] == "http" and scope["path"] == "/mcp" and scope["method"] == "POST")


class ServerSpans:
    """Every request is a server span; for ``POST /mcp`` the MCP SDK opens it.

    The SDK's span ("tools/call send_telegram_event", with the JSON-RPC and tool
    attributes) is the one an operator wants; a generic HTTP span around it cost more CPU
    per call than any other part of tracing and said less. There only the caller's HTTP
    trace context is continued (a ``traceparent`` in ``_meta`` wins, as the SDK decides).
    A refused ``/mcp`` request (401, 413...) has no span: it is counted and audited.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.traced = asgi_tracing(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_mcp_post(scope):
            with continued_trace(scope):
                await self.app(scope, receive, send)
        else:
            await self.traced(scope, receive, send)


def create_app(
    settings: GatewaySettings | None = None, tool_registry: ToolRegistry | None = None
) -> Gateway:
    settings = settings or GatewaySettings()
    if tool_registry is None:
        tools.load_all()
        tool_registry = registry
    service = Service(SERVICE_NAME, settings, CONTRACT)
    broker = service.broker

    async def ask_auth(presented: str, request_id: str | None) -> VerifyResponse:
        return await rpc_call(
            broker,
            subjects.AUTH_RPC_VERIFY,
            VerifyRequest(api_key=presented, request_id=request_id),
            VerifyResponse,
            timeout_s=settings.verify_timeout_s,
        )

    async def audit(record: AuditRecord) -> bool:
        return await publish_audit(broker, record)

    verifier = Verifier(
        ask_auth,
        ttl_s=settings.verify_cache_ttl_s,
        negative_ttl_s=settings.verify_negative_cache_ttl_s,
    )
    limiter = SharedRateLimiter(
        settings.agent_default_rate_limit_per_minute,
        lease_s=settings.rate_limit_lease_s,
        on_fallback=gateway_metrics.RATE_LIMIT_FALLBACKS.inc,
    )
    auditor = Auditor(audit)
    runner = ToolRunner(
        broker=broker,
        reads=EventsReadModels(broker),
        limiter=limiter,
        auditor=auditor,
        extras={"claude_code": settings.claude_code, "auditor": auditor},
    )

    async def forget_key(change: KeyChanged) -> None:
        verifier.forget(change.key_id)

    @service.on_connected
    async def forget_everything() -> None:
        # Changes broadcast while this replica was disconnected were missed.
        verifier.clear()

    async def connect(js: JetStreamContext) -> Bindings:
        # Until the shared budgets are open the limiter counts locally (its fallback).
        limiter.store = KvBudgetStore(await js.key_value(subjects.KV_RATE_LIMITS))
        return Bindings(
            listeners={subjects.AUTH_KEY_CHANGED: forget_key},
        )

    service.connect_with(connect)

    @service.on_stop
    async def finish_audit() -> None:
        await auditor.drain()

    server = build_server(tool_registry, runner, settings.server_name)
    mcp_endpoint, session_manager = build_mcp_app(server, settings.max_body_bytes)
    streamed_endpoint, streamed_manager = build_mcp_app(
        server, settings.max_body_bytes, json_response=False
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # A mounted MCP app's own lifespan never runs.
        async with session_manager.run(), streamed_manager.run():
            yield

    api = FastAPI(
        title="CCTelegram gateway",
        version=__version__,
        description="REST twins of the MCP tools. Authenticate with "
        "`Authorization: Bearer cctg_<id>_<secret>`.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(api)
    add_tool_routes(api, tool_registry, runner)
    add_resource_routes(api, tool_registry, runner)
    add_integration_routes(api, runner, settings.telegram_webhook_secret)
    add_hook_routes(api, runner)
    add_file_routes(api, runner)
    # /mcp first: routes are matched in order (here and in the metrics middleware), and it
    # is the hot path.
    api.router.routes.insert(0, Route("/mcp", endpoint=mcp_endpoint, methods=["POST"]))
    api.router.routes.extend(service.routes())

    front_door = GatewayMiddleware(
        McpFastPath(api, mcp_endpoint, streamed_endpoint, tool_registry.streamed_names()),
        verifier=verifier,
        auditor=auditor,
        allowed_hosts=settings.allowed_hosts,
        allowed_origins=settings.allowed_origins,
        max_body_bytes=settings.max_body_bytes,
        streamed_bodies={FILES_PATH: UPLOAD_BODY},
    )
    gateway_metrics.initialise([spec.name for spec in tool_registry])
    return Gateway(
        service=service,
        # Outermost: every request is a server span (health and metrics excluded), counted.
        asgi=HttpMetricsMiddleware(ServerSpans(front_door)),
        fastapi=api,
        verifier=verifier,
        limiter=limiter,
        auditor=auditor,
    )
