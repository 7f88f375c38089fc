"""Installing a Debian package a test needs (promtool, prometheus), by itself.

Runs ``apt-get``: dev-only, it lives here so that no service image contains package-manager
code (this package is never installed in an image).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def ensure_debian_package(binary: str, package: str, timeout_s: float = 600) -> str | None:
    """The path of ``binary``, installing Debian ``package`` first when it is missing.

    Tests call this instead of requiring a hand-installed tool: CI machines start clean. It
    installs only as root with apt available, and returns None (the caller skips with a
    reason) when installation is impossible.
    """
    found = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if found:
        return found
    apt_get = shutil.which("apt-get")
    if os.geteuid() != 0 or apt_get is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        lists = Path("/var/lib/apt/lists")
        if not any(lists.glob("*_Packages")):
            subprocess.run(  # noqa: S603 - fixed arguments
                [apt_get, "update", "-qq"],
                env=env,
                timeout=timeout_s,
                check=True,
                capture_output=True,
            )
        subprocess.run(  # noqa: S603 - a fixed Debian package name chosen by our own tests
            [apt_get, "install", "-y", "-qq", "--no-install-recommends", package],
            env=env,
            timeout=timeout_s,
            check=True,
            capture_output=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    return shutil.which(binary) or (binary if Path(binary).is_file() else None)
