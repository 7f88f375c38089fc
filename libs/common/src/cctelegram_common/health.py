"""Health checks in the ``application/health+json`` shape at /health and /health/ready."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Status = Literal["pass", "warn", "fail"]
MEDIA_TYPE = "application/health+json"


@dataclass(frozen=True)
class CheckResult:
    status: Status
    output: str | None = None
    observed_value: Any = None
    observed_unit: str | None = None


Check = Callable[[], Awaitable[CheckResult]]


@dataclass
class HealthRegistry:
    """The checks of one service; readiness = the worst of them."""

    service: str
    version: str
    instance_id: str
    checks: dict[str, Check] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def run(self, timeout_s: float = 2.0) -> tuple[Status, dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        names = list(self.checks)

        async def one(name: str) -> CheckResult:
            try:
                return await asyncio.wait_for(self.checks[name](), timeout_s)
            except TimeoutError:
                return CheckResult("fail", f"check timed out after {timeout_s}s")
            except Exception as error:  # a broken check must not break the endpoint
                return CheckResult("fail", f"check raised {type(error).__name__}")

        results = await asyncio.gather(*(one(name) for name in names))
        details: dict[str, Any] = {}
        for name, result in zip(names, results, strict=True):
            entry: dict[str, Any] = {"status": result.status, "time": now}
            if result.output:
                entry["output"] = result.output
            if result.observed_value is not None:
                entry["observedValue"] = result.observed_value
            if result.observed_unit:
                entry["observedUnit"] = result.observed_unit
            details[name] = [entry]
        statuses = {result.status for result in results}
        overall: Status = "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
        return overall, details

    def body(self, status: Status, checks: dict[str, Any] | None = None) -> dict[str, Any]:
        document: dict[str, Any] = {
            "status": status,
            "version": self.version,
            "serviceId": f"cctelegram-{self.service}",
            "description": f"CCTelegram {self.service}",
            "instanceId": self.instance_id,
            "uptimeSeconds": round(time.monotonic() - self.started_at, 1),
        }
        if checks is not None:
            document["checks"] = checks
        return document

    async def liveness(self, _request: Request) -> JSONResponse:
        return JSONResponse(self.body("pass"), media_type=MEDIA_TYPE)

    async def readiness(self, _request: Request) -> JSONResponse:
        status, checks = await self.run()
        return JSONResponse(
            self.body(status, checks),
            status_code=503 if status == "fail" else 200,
            media_type=MEDIA_TYPE,
        )

    def routes(self) -> list[Route]:
        return [
            Route("/health", self.liveness, methods=["GET"]),
            Route("/health/ready", self.readiness, methods=["GET"]),
        ]
