"""Inbound integrations that are not tools: Telegram's webhook and an Alertmanager receiver."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from cctelegram_common import subjects
from cctelegram_common.contracts.auth import Permission
from cctelegram_common.contracts.event_types import EventType
from cctelegram_common.contracts.events import Severity, SubmitEvent
from cctelegram_common.contracts.updates import InboundUpdate
from cctelegram_common.logging import get_logger
from cctelegram_common.nats import jetstream, publish_to_stream
from cctelegram_gateway.calls import ToolRunner
from cctelegram_gateway.errors import ERROR_RESPONSES, ToolError
from cctelegram_gateway.rest import error_response, principal_of, request_id_of

log = get_logger(__name__)
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name


# --- Alertmanager ---------------------------------------------------------------------------
class Alert(BaseModel):
    """One alert as Alertmanager sends it (webhook format version 4; extra fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    status: str = Field(description="firing or resolved")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None  # noqa: N815 - Alertmanager's field name
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str | None = None  # noqa: N815
    fingerprint: str | None = None


class AlertmanagerWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: str | None = None
    status: str | None = None
    receiver: str | None = None
    alerts: list[Alert] = Field(max_length=1000)


class AlertsAccepted(BaseModel):
    accepted: int = Field(description="Alerts stored as events")
    event_ids: list[str]


_SEVERITIES = {
    "critical": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "error": Severity.HIGH,
    "high": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "info": Severity.LOW,
    "low": Severity.LOW,
}


def alert_event(alert: Alert, client_id: str, request_id: str) -> SubmitEvent:
    """Firing → alert_notification, resolved → system_health; the id is stable per alert
    state so Alertmanager's repeats and retries are stored once."""
    resolved = alert.status.lower() == "resolved"
    name = alert.labels.get("alertname", "alert")
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    moment = alert.endsAt if resolved else alert.startsAt
    identity = (
        alert.fingerprint
        or hashlib.sha256(repr(sorted(alert.labels.items())).encode()).hexdigest()[:16]
    )
    event_id = (
        "am-"
        + hashlib.sha256(
            f"{identity}|{alert.status}|{moment.isoformat() if moment else ''}".encode()
        ).hexdigest()[:24]
    )
    severity = _SEVERITIES.get(alert.labels.get("severity", "").lower())
    return SubmitEvent(
        event_id=event_id,
        type=EventType.SYSTEM_HEALTH if resolved else EventType.ALERT_NOTIFICATION,
        title=f"{'Resolved' if resolved else 'Firing'}: {name}"[:200],
        description=(alert.annotations.get("description") or summary)[:4000],
        source="alertmanager",
        data={
            "status": alert.status,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "url": alert.generatorURL,
            "starts_at": alert.startsAt.isoformat() if alert.startsAt else None,
            "ends_at": alert.endsAt.isoformat() if alert.endsAt else None,
        },
        severity=Severity.LOW if resolved else severity,
        client_id=client_id,
        request_id=request_id,
    )


def add_integration_routes(
    app: FastAPI, runner: ToolRunner, telegram_webhook_secret: SecretStr | None
) -> None:
    @app.post(
        "/v1/integrations/alertmanager",
        response_model=AlertsAccepted,
        responses=ERROR_RESPONSES,
        tags=["integrations"],
        operation_id="alertmanager_webhook",
        summary="Alertmanager webhook receiver: firing/resolved alerts become events",
    )
    async def alertmanager(request: Request, payload: AlertmanagerWebhook) -> Response:
        principal = principal_of(request)
        request_id = request_id_of(request)
        try:
            runner.authorize(principal, Permission.EVENTS_SEND, "alertmanager", request_id)
            await runner.spend(principal, "alertmanager", request_id)
        except ToolError as refused:
            return error_response(
                request,
                refused.status,
                refused.code,
                refused.message,
                retry_after_s=refused.retry_after_s,
            )
        event_ids: list[str] = []
        for alert in payload.alerts:
            event = alert_event(alert, principal.client_id, request_id)
            try:
                await publish_to_stream(
                    jetstream(runner.broker),
                    subjects.EVENT_SUBMIT,
                    event,
                    msg_id=event.event_id,
                    stream=subjects.STREAM_EVENTS,
                    request_id=request_id,
                )
            except Exception as error:
                log.warning("alert_store_failed", request_id=request_id, error=type(error).__name__)
                return error_response(
                    request,
                    503,
                    "unavailable",
                    "could not store the alerts; retry",
                    retry_after_s=1.0,
                )
            event_ids.append(event.event_id)
        return Response(
            AlertsAccepted(accepted=len(event_ids), event_ids=event_ids).model_dump_json(),
            media_type="application/json",
        )

    @app.post("/telegram/webhook", include_in_schema=False)
    async def telegram_webhook(request: Request) -> Response:
        request_id = request_id_of(request)
        if telegram_webhook_secret is None:
            return error_response(request, 404, "not_found", "Not Found")
        presented = request.headers.get(SECRET_HEADER)
        if presented is None:
            return error_response(request, 401, "unauthorized", "secret token header missing")
        if not hmac.compare_digest(
            presented.encode(), telegram_webhook_secret.get_secret_value().encode()
        ):
            return error_response(request, 403, "forbidden", "secret token does not match")
        try:
            raw: Any = await request.json()
            if not isinstance(raw, dict):
                raise TypeError("an Update is a JSON object")
            # The Telegram edge: the raw Update becomes typed contracts here, once.
            update = InboundUpdate.from_telegram(raw, source="webhook")
        except (ValueError, KeyError, TypeError, ValidationError):
            return error_response(
                request, 400, "invalid", "not a Telegram Update", field="update_id"
            )
        try:
            await publish_to_stream(
                jetstream(runner.broker),
                subjects.TELEGRAM_UPDATES,
                update,
                msg_id=update.msg_id,
                stream=subjects.STREAM_UPDATES,
                request_id=request_id,
            )
        except Exception as error:
            # Not 200: Telegram retries the update later.
            log.warning("update_store_failed", request_id=request_id, error=type(error).__name__)
            return error_response(request, 503, "unavailable", "could not store the update")
        return Response(b"{}", media_type="application/json")
