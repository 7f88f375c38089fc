"""Retry with jittered backoff that honours server hints, and a circuit breaker."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)

T = TypeVar("T")


class RetryableError(Exception):
    """An error worth retrying; ``retry_after_s`` is the server's own hint, if it gave one."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def backoff_delay(
    attempt: int, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base·2^(attempt-1))]."""
    ceiling = min(cap_s, base_s * (2 ** max(attempt - 1, 0)))
    return (rng or random).uniform(0, ceiling)


@dataclass
class _WaitHonouringHints:
    base_s: float
    cap_s: float

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = getattr(error, "retry_after_s", None)
        if isinstance(hint, int | float) and hint >= 0:
            # A server's own hint is a floor, plus a little jitter so replicas spread out.
            return float(hint) + random.uniform(0, 0.25)  # noqa: S311 - jitter, not crypto
        return backoff_delay(state.attempt_number, self.base_s, self.cap_s)


async def retry_async(
    operation: Callable[[], Awaitable[T]],
    *,
    attempts: int = 5,
    max_total_s: float = 60.0,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    retry_on: Callable[[BaseException], bool] = lambda e: isinstance(e, RetryableError),
) -> T:
    """Run ``operation`` until it succeeds, retrying what ``retry_on`` accepts, bounded."""
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts) | stop_after_delay(max_total_s),
        wait=_WaitHonouringHints(base_s, cap_s),
        retry=retry_if_exception(retry_on),
        reraise=True,
    ):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RuntimeError):
    def __init__(self, retry_in_s: float) -> None:
        super().__init__(f"circuit open; next trial in {retry_in_s:.1f}s")
        self.retry_after_s = retry_in_s


@dataclass
class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; one trial after ``reset_s``."""

    failure_threshold: int = 5
    reset_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float = field(default=0.0)
    _trial_in_flight: bool = False

    def before_call(self) -> None:
        """Raise ``CircuitOpenError`` when the call must not be made now."""
        if self.state is CircuitState.OPEN:
            waited = self.clock() - self.opened_at
            if waited < self.reset_s:
                raise CircuitOpenError(self.reset_s - waited)
            self.state = CircuitState.HALF_OPEN
            self._trial_in_flight = False
        if self.state is CircuitState.HALF_OPEN:
            if self._trial_in_flight:
                raise CircuitOpenError(self.reset_s)
            self._trial_in_flight = True

    def record_success(self) -> None:
        self.state = CircuitState.CLOSED
        self.consecutive_failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        self._trial_in_flight = False
        if (
            self.state is CircuitState.HALF_OPEN
            or self.consecutive_failures >= self.failure_threshold
        ):
            self.state = CircuitState.OPEN
            self.opened_at = self.clock()

    def reset(self) -> None:
        self.record_success()

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        self.before_call()
        try:
            result = await operation()
        except Exception:
            self.record_failure()
            raise
        self.record_success()
        return result
