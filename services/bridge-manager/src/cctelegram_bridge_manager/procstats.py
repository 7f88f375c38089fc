"""Memory and CPU of notifier processes on this host, read from ``/proc`` (Linux only)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    fields = stat.rsplit(")", 1)[-1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mb(pid: int) -> float | None:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * _PAGE_SIZE / (1024 * 1024), 1)


@dataclass
class ProcessSampler:
    """CPU % is the CPU time used between two samples of the same pid, over the wall time."""

    _previous: dict[int, tuple[float, float]] = field(default_factory=dict)

    def sample(self, pid: int) -> tuple[float | None, float | None]:
        """(resident MB, CPU % of one core since the previous sample) or Nones."""
        cpu = _cpu_seconds(pid)
        rss = _rss_mb(pid)
        if cpu is None:
            self._previous.pop(pid, None)
            return None, None
        now = time.monotonic()
        previous = self._previous.get(pid)
        self._previous[pid] = (cpu, now)
        if previous is None or now <= previous[1]:
            return rss, None
        return rss, round(100 * (cpu - previous[0]) / (now - previous[1]), 1)
