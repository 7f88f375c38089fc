"""Child processes that must not outlive the process that started them."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        import ctypes  # only children need it

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when its parent dies (Linux; None
    elsewhere), so a killed supervisor (`cctelegram up`, bridge-manager) leaves nothing behind.

    Only for a parent without threads at spawn time, or one that accepts the ``preexec_fn``
    caveat of ``subprocess`` (asyncio's child watcher forks from the loop's thread).
    """
    return _die_with_parent if sys.platform == "linux" else None
