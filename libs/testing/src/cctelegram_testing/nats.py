"""The NATS server of the test fixtures and benchmarks: the CLI's embedded runner.

``cctelegram up`` owns the runner (``cctelegram_cli.natsserver``); tests, ``conftest.py``
files and ``bench/`` import it from here so that no test names the CLI.
"""

from cctelegram_cli.natsserver import (
    NatsServer,
    NatsServerError,
    free_port,
    free_port_block,
    port_in_use,
)

__all__ = ["NatsServer", "NatsServerError", "free_port", "free_port_block", "port_in_use"]
