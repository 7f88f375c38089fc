"""Supervised mode: bridge-manager owns real notifier processes and keeps them running."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from cctelegram_bridge_manager.settings import SupervisorSettings
from cctelegram_common.logging import get_logger
from cctelegram_common.processes import AsyncChildProcess, ProcessSpec
from cctelegram_common.resilience import backoff_delay

log = get_logger(__name__)

OnExit = Callable[[str], Awaitable[None]]


@dataclass
class NotifierSlot:
    """One supervised notifier: its fixed port, its current process and restart history."""

    index: int
    port: int
    wanted: bool = False
    generation: int = 0
    instance_id: str = ""
    process: AsyncChildProcess | None = None
    started_at: float = 0.0
    crashes: int = 0
    restart_at: float | None = None
    watcher: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive and self.process else None


class NotifierSupervisor:
    """Starts, stops, restarts N ``python -m cctelegram_notifier`` processes.

    Each process gets its own HTTP port and instance id; a crashed one is restarted with
    jittered backoff (reset once it has run ``stable_after_s``). Stopping is graceful:
    SIGTERM (the notifier finishes in-flight sends), SIGKILL only after ``stop_grace_s``.
    """

    def __init__(
        self,
        settings: SupervisorSettings,
        nats_urls: Sequence[str],
        *,
        on_exit: OnExit | None = None,
        base_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.settings = settings
        self.nats_urls = list(nats_urls)
        self.on_exit = on_exit
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.python = python
        self.run_id = secrets.token_hex(2)
        self.slots = [
            NotifierSlot(index=i, port=settings.base_port + i) for i in range(settings.notifiers)
        ]
        # Instance ids of processes that ended: their last heartbeat must not count as alive.
        self.exited: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._closing = False
        self._restarter: asyncio.Task[None] | None = None

    # --- what the status needs ----------------------------------------------------------
    def instance_ids(self) -> frozenset[str]:
        return frozenset(slot.instance_id for slot in self.slots if slot.instance_id)

    def exited_ids(self) -> frozenset[str]:
        horizon = time.monotonic() - 300
        for instance_id, at in list(self.exited.items()):
            if at < horizon:
                del self.exited[instance_id]
        return frozenset(self.exited)

    def alive(self) -> list[NotifierSlot]:
        return [slot for slot in self.slots if slot.alive]

    def pids(self) -> list[int]:
        return [slot.pid for slot in self.slots if slot.pid is not None]

    # --- lifecycle ----------------------------------------------------------------------
    def env_for(self, slot: NotifierSlot) -> dict[str, str]:
        env = dict(self.base_env)
        env["NOTIFIER_HTTP__PORT"] = str(slot.port)
        env["NOTIFIER_INSTANCE_ID"] = slot.instance_id
        env["NOTIFIER_NATS__URLS"] = json.dumps(self.nats_urls)
        return env

    async def _spawn(self, slot: NotifierSlot) -> None:
        slot.generation += 1
        prefix = self.settings.instance_prefix
        slot.instance_id = f"{prefix}-{slot.index}-{self.run_id}{slot.generation}"
        slot.process = await ProcessSpec(
            [self.python, "-m", self.settings.module],
            env=self.env_for(slot),
            die_with_parent=True,  # SIGTERM if bridge-manager dies without stopping it
        ).start_async()
        slot.started_at = time.monotonic()
        slot.restart_at = None
        slot.watcher = asyncio.create_task(self._watch(slot, slot.process, slot.instance_id))
        log.info(
            "notifier_started",
            instance_id=slot.instance_id,
            pid=slot.process.pid,
            port=slot.port,
        )

    async def _watch(
        self, slot: NotifierSlot, process: AsyncChildProcess, instance_id: str
    ) -> None:
        code = await process.wait()
        self.exited[instance_id] = time.monotonic()
        if self.on_exit is not None:
            with contextlib.suppress(Exception):
                await self.on_exit(instance_id)
        if not slot.wanted or self._closing or slot.process is not process:
            log.info("notifier_stopped", instance_id=instance_id, code=code)
            return
        if time.monotonic() - slot.started_at >= self.settings.stable_after_s:
            slot.crashes = 0
        slot.crashes += 1
        if not self.settings.autorestart:
            log.warning("notifier_exited", instance_id=instance_id, code=code, restart=False)
            return
        delay = max(
            0.2,
            backoff_delay(slot.crashes, self.settings.restart_base_s, self.settings.restart_cap_s),
        )
        slot.restart_at = time.monotonic() + delay
        log.warning(
            "notifier_exited", instance_id=instance_id, code=code, restart_in_s=round(delay, 2)
        )
        await asyncio.sleep(delay)
        async with self._lock:
            if slot.wanted and not self._closing and not slot.alive:
                await self._spawn(slot)

    async def wait_ready(self, slots: Sequence[NotifierSlot]) -> bool:
        """Until each process answers ``/health/ready`` (or exits, or time runs out)."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        pending = list(slots)
        async with httpx.AsyncClient(timeout=1.0) as client:
            while pending and time.monotonic() < deadline:
                for slot in list(pending):
                    if not slot.alive:
                        pending.remove(slot)
                        continue
                    with contextlib.suppress(httpx.HTTPError):
                        answer = await client.get(f"http://127.0.0.1:{slot.port}/health/ready")
                        if answer.status_code == 200:
                            pending.remove(slot)
                if pending:
                    await asyncio.sleep(0.2)
        return not pending and all(slot.alive for slot in slots)

    async def start(self, *, wait: bool = True) -> list[NotifierSlot]:
        """Start every slot that is not running. Returns the slots started now."""
        async with self._lock:
            started: list[NotifierSlot] = []
            for slot in self.slots:
                slot.wanted = True
                slot.crashes = 0
                if not slot.alive:
                    await self._spawn(slot)
                    started.append(slot)
        if wait and started:
            await self.wait_ready(started)
        return started

    async def _terminate(self, slot: NotifierSlot) -> None:
        process = slot.process
        if process is None or not process.alive:
            return
        # Detached from the slot first, so its watcher sees an intended exit, not a crash.
        slot.process = None
        await process.stop(self.settings.stop_grace_s)
        if process.killed:
            log.warning("notifier_killed", instance_id=slot.instance_id, pid=process.pid)
        if slot.watcher is not None:
            # The watcher records the exit (and clears the heartbeat); let it finish.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(slot.watcher), 5)

    async def stop(self) -> int:
        """Stop every process gracefully and keep them stopped. Returns how many stopped."""
        async with self._lock:
            running = [slot for slot in self.slots if slot.alive]
            for slot in self.slots:
                slot.wanted = False
            await asyncio.gather(*(self._terminate(slot) for slot in running))
            return len(running)

    async def restart(self) -> list[NotifierSlot]:
        """Rolling restart: one process at a time, each replacement ready before the next."""
        restarted: list[NotifierSlot] = []
        for slot in self.slots:
            async with self._lock:
                slot.wanted = True
                await self._terminate(slot)
                await self._spawn(slot)
            await self.wait_ready([slot])
            restarted.append(slot)
        return restarted

    async def close(self) -> None:
        """On bridge-manager's own SIGTERM: stop the children, wait for their watchers."""
        self._closing = True
        await asyncio.gather(*(self._terminate(slot) for slot in self.slots if slot.alive))
        for slot in self.slots:
            if slot.watcher is not None and not slot.watcher.done():
                slot.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await slot.watcher
