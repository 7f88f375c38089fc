"""Latency from a button press in the Telegram sandbox to `wait_for_approval` returning.

Starts the whole suite with `cctelegram up` (embedded NATS, sandbox, five services), then for
each round: `send_approval_request` over MCP, find the card in the sandbox chat, start
`wait_for_approval`, press a button through the sandbox control API, and time press → result.
The path measured: sandbox getUpdates long poll → notifier → NATS → events (MAC, approver,
compare-and-set) → KV watch in the gateway → MCP response. Prints p50 / p90 / p99 / max.

    uv run python bench/approval_roundtrip.py [--rounds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from cctelegram_testing.bench import approval_round_trips, percentile
from cctelegram_testing.suite import start_suite


async def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        suite = start_suite(Path(data_dir))
        try:
            latencies_ms = await approval_round_trips(suite, rounds, "Bench approval")
        finally:
            suite.stop()
    print(f"approval round trip, press in sandbox → wait_for_approval returns ({rounds} rounds)")
    print(f"  p50  {percentile(latencies_ms, 0.50):7.1f} ms   (target ≤ 100 ms)")
    print(f"  p90  {percentile(latencies_ms, 0.90):7.1f} ms")
    print(f"  p99  {percentile(latencies_ms, 0.99):7.1f} ms   (target ≤ 300 ms)")
    print(f"  max  {max(latencies_ms):7.1f} ms   mean {statistics.fmean(latencies_ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.rounds))


if __name__ == "__main__":
    main()
