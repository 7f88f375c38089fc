"""Composition root of the bridge-manager service: monitor, controller, supervisor, RPC handlers."""

from __future__ import annotations

import asyncio
import contextlib

import nats.js.errors
from nats.js import JetStreamContext

from cctelegram_bridge_manager import handlers
from cctelegram_bridge_manager.contract import CONTRACT
from cctelegram_bridge_manager.control import BridgeController
from cctelegram_bridge_manager.fleet import DeliveryWindow, DesiredStateStore
from cctelegram_bridge_manager.monitor import FleetMonitor
from cctelegram_bridge_manager.settings import BridgeManagerSettings
from cctelegram_bridge_manager.supervisor import NotifierSupervisor
from cctelegram_bridge_manager.telegram import TelegramProbe
from cctelegram_common import subjects
from cctelegram_common.audit import publish_audit
from cctelegram_common.contracts.audit import AuditRecord
from cctelegram_common.contracts.bridge import BridgeControl, HealthStatus
from cctelegram_common.health import CheckResult
from cctelegram_common.messaging import Bindings
from cctelegram_common.nats import broadcast as broadcast_on_nats
from cctelegram_common.nats import jetstream
from cctelegram_common.redaction import register_secret
from cctelegram_common.service import Service

SERVICE_NAME = CONTRACT.service


def create_app(settings: BridgeManagerSettings | None = None) -> Service:
    settings = settings or BridgeManagerSettings()
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else None
    if token:
        register_secret(token)
    service = Service(SERVICE_NAME, settings, CONTRACT)
    monitors: list[FleetMonitor] = []
    probe = TelegramProbe(token, settings.telegram_api_base_url, settings.telegram_timeout_s)
    window = DeliveryWindow()
    tasks: list[asyncio.Task[None]] = []
    supervisor: NotifierSupervisor | None = None

    async def forget_heartbeat(instance_id: str) -> None:
        """A supervised process ended: its last heartbeat is no longer true."""
        kv = await jetstream(service.broker).key_value(subjects.KV_BRIDGE)
        with contextlib.suppress(nats.js.errors.KeyNotFoundError):
            await kv.delete(subjects.bridge_instance_key(instance_id))

    if settings.supervise:
        supervisor = NotifierSupervisor(
            settings.supervisor, settings.nats.urls, on_exit=forget_heartbeat
        )

    async def broadcast(control: BridgeControl) -> None:
        # Core NATS, no queue group: every notifier hears it; the KV ``desired`` covers
        # an instance that is starting right now.
        await broadcast_on_nats(service.broker, subjects.BRIDGE_CONTROL, control)

    async def audit(record: AuditRecord) -> bool:
        return await publish_audit(service.broker, record)

    async def release() -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        tasks.clear()
        await window.stop()

    async def connect(js: JetStreamContext) -> Bindings:
        kv = await js.key_value(subjects.KV_BRIDGE)
        await window.start(js)
        monitor = FleetMonitor(kv, js, window, settings.health, supervisor=supervisor, probe=probe)
        monitors.append(monitor)
        controller = BridgeController(
            desired=DesiredStateStore(kv),
            broadcast=broadcast,
            read_status=monitor.status,
            audit=audit,
            supervisor=supervisor,
        )
        tasks.append(asyncio.create_task(monitor.sample_forever(settings.sample_interval_s)))
        tasks.append(asyncio.create_task(monitor.probe_forever(settings.telegram_check_interval_s)))
        if supervisor is not None:
            tasks.append(asyncio.create_task(start_supervised(monitor, supervisor)))
        return handlers.bindings(monitor, controller)

    service.connect_with(connect)

    async def start_supervised(monitor: FleetMonitor, supervisor: NotifierSupervisor) -> None:
        """At start, run the notifiers unless an operator left the bridge stopped."""
        desired, _revision = await monitor.desired.read()
        if desired.paused:
            service.log.warning(
                "bridge_left_stopped",
                changed_by=desired.changed_by,
                hint="start_bridge or ensure_bridge_running starts the notifiers",
            )
            return
        await supervisor.start(wait=False)

    async def fleet_check() -> CheckResult:
        """Readiness is about bridge-manager itself; the fleet's health is reported (warn)
        but never makes bridge-manager unready, or nobody could ask it what is wrong."""
        if not monitors:
            return CheckResult("fail", "not connected yet")
        monitor = monitors[0]
        status = monitor.last or await monitor.status()
        reasons = "; ".join(reason.message for reason in status.health_reasons)
        return CheckResult(
            "pass" if status.health is HealthStatus.PASS else "warn",
            f"fleet {status.health.value}" + (f": {reasons}" if reasons else ""),
            observed_value=status.live_instances,
            observed_unit="live notifiers",
        )

    service.health.add("fleet", fleet_check)

    @service.on_stopping
    async def stop_children() -> None:
        # First, while NATS is up: the notifiers finish their in-flight sends and ack them.
        if supervisor is not None:
            await supervisor.close()

    @service.on_stop
    async def close() -> None:
        await release()
        await probe.close()

    return service
