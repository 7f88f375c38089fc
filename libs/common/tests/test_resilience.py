"""Retry honours server hints and stays bounded; the circuit breaker opens and recovers."""

import pytest

from cctelegram_common.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RetryableError,
    backoff_delay,
    retry_async,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_jittered_and_capped() -> None:
    delays = [backoff_delay(attempt, base_s=1, cap_s=4) for attempt in range(1, 20)]
    assert all(0 <= delay <= 4 for delay in delays)


async def test_retry_stops_after_the_attempt_bound() -> None:
    calls = 0

    async def always_fails() -> None:
        nonlocal calls
        calls += 1
        raise RetryableError("boom", retry_after_s=0)

    with pytest.raises(RetryableError):
        await retry_async(always_fails, attempts=3, base_s=0.001)
    assert calls == 3


async def test_retry_does_not_retry_permanent_errors() -> None:
    calls = 0

    async def permanent() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        await retry_async(permanent, attempts=5, base_s=0.001)
    assert calls == 1


async def test_retry_returns_the_first_success() -> None:
    outcomes = iter([RetryableError("x", 0), RetryableError("y", 0), "ok"])

    async def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await retry_async(flaky, attempts=5, base_s=0.001) == "ok"


def test_circuit_opens_after_threshold_and_allows_one_trial_after_reset() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_s=10, clock=clock)
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.now = 10.5
    breaker.before_call()  # the one trial
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # no second trial while the first is in flight
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


def test_a_failed_trial_reopens_the_circuit() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_s=5, clock=clock)
    breaker.before_call()
    breaker.record_failure()
    clock.now = 6
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened_at == 6
