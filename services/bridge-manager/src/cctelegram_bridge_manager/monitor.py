"""The live view of the fleet: reads NATS, the supervisor and the Telegram probe into a status."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from cctelegram_bridge_manager import metrics
from cctelegram_bridge_manager.fleet import (
    DeliveryWindow,
    DesiredStateStore,
    read_heartbeats,
    read_queue,
)
from cctelegram_bridge_manager.procstats import ProcessSampler
from cctelegram_bridge_manager.settings import HealthThresholds
from cctelegram_bridge_manager.status import FleetSnapshot, compute_status, is_growing
from cctelegram_bridge_manager.supervisor import NotifierSupervisor
from cctelegram_bridge_manager.telegram import NOT_CONFIGURED, TelegramProbe
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.contracts.bridge import (
    BridgeMode,
    BridgeStatus,
    DesiredBridgeState,
    NotifierHeartbeat,
    QueueFigures,
)
from cctelegram_common.logging import get_logger

log = get_logger(__name__)


class FleetMonitor:
    """Computes ``BridgeStatus`` on demand and samples it periodically for metrics."""

    def __init__(
        self,
        kv: KeyValue,
        js: JetStreamContext,
        window: DeliveryWindow,
        thresholds: HealthThresholds,
        *,
        supervisor: NotifierSupervisor | None = None,
        probe: TelegramProbe | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.kv = kv
        self.js = js
        self.window = window
        self.thresholds = thresholds
        self.supervisor = supervisor
        self.probe = probe
        self.clock = clock
        self.desired = DesiredStateStore(kv)
        self.depths: deque[int] = deque(maxlen=max(thresholds.growing_samples, 2))
        self.last: BridgeStatus | None = None
        self._processes = ProcessSampler()
        self._hostname = socket.gethostname()

    @property
    def mode(self) -> BridgeMode:
        return BridgeMode.SUPERVISED if self.supervisor is not None else BridgeMode.CLUSTER

    def _with_local_process_figures(self, beat: NotifierHeartbeat) -> NotifierHeartbeat:
        """Fill memory / CPU from /proc for instances on this host that did not report them."""
        if beat.memory_usage_mb is not None or beat.host != self._hostname:
            return beat
        rss, cpu = self._processes.sample(beat.pid)
        if rss is None:
            return beat
        return beat.model_copy(update={"memory_usage_mb": rss, "cpu_usage_percent": cpu})

    async def snapshot(self, *, record_depth: bool = False) -> FleetSnapshot:
        errors: list[str] = []
        heartbeats: list[NotifierHeartbeat] = []
        desired = DesiredBridgeState(paused=False)
        queue: QueueFigures | None = None
        try:
            heartbeats = [
                self._with_local_process_figures(b) for b in await read_heartbeats(self.js, self.kv)
            ]
        except Exception as error:
            errors.append(f"heartbeats ({type(error).__name__})")
        try:
            desired, _revision = await self.desired.read()
        except Exception as error:
            errors.append(f"desired state ({type(error).__name__})")
        try:
            queue = await read_queue(self.js, self.window, now=self.clock())
            if record_depth:
                self.depths.append(queue.depth)
            growing = is_growing(list(self.depths), self.thresholds.growing_samples)
            queue = queue.model_copy(update={"growing": growing})
        except Exception as error:
            errors.append(f"outbox ({type(error).__name__})")
        supervisor = self.supervisor
        return FleetSnapshot(
            now=self.clock(),
            heartbeats=heartbeats,
            desired=desired,
            queue=queue,
            telegram=self.probe.last if self.probe is not None else NOT_CONFIGURED,
            mode=self.mode,
            supervised_ids=supervisor.instance_ids() if supervisor else frozenset(),
            exited_ids=supervisor.exited_ids() if supervisor else frozenset(),
            last_report_at=self.window.last_report_at,
            read_errors=tuple(errors),
        )

    async def status(self, *, record_depth: bool = False) -> BridgeStatus:
        status = compute_status(await self.snapshot(record_depth=record_depth), self.thresholds)
        self.last = status
        return status

    async def sample_forever(self, interval_s: float) -> None:
        """Refresh the gauges and the growth history; never raises."""
        while True:
            try:
                metrics.publish(await self.status(record_depth=True))
            except Exception as error:  # the sampler must outlive a NATS hiccup
                log.warning("fleet_sample_failed", error=type(error).__name__)
            await asyncio.sleep(interval_s)

    async def probe_forever(self, interval_s: float) -> None:
        if self.probe is None or not self.probe.configured:
            return
        while True:
            with contextlib.suppress(Exception):
                await self.probe.check()
            await asyncio.sleep(interval_s)
