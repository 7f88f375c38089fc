"""Build the suite's images from deploy/images/Dockerfile (``make images``).

Uses the Docker engine at DOCKER_HOST (``engine.sh start`` provides one). The base images are
build arguments: the official ``python`` and ``uv`` images when a registry answers; else a
local Python base made from Debian's packages with mmdebstrap (the host's CA bundle inside,
so uv trusts a TLS-intercepting proxy) and a uv image made from the host's uv binary.
Prints each image's size. Run with any Python >= 3.11; needs nothing but the docker CLI.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
IMAGES = tomllib.loads((ROOT / "deploy" / "images" / "images.toml").read_text())
OFFICIAL_PYTHON = "python:3.11-slim-bookworm"
OFFICIAL_UV = "ghcr.io/astral-sh/uv:0.13"
LOCAL_PYTHON = "cctelegram-local/python:3.11-bookworm"
LOCAL_UV = "cctelegram-local/uv:host"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Debian packages of the local base: python3 as `python`, CA certificates, useradd.
BASE_PACKAGES = "python3,python-is-python3,ca-certificates,passwd"
SIZE_TARGET_MB = 180
# Never installed into the local base: translations and documentation.
DPKG_EXCLUDE = ("locale", "doc", "man", "info", "lintian", "linda")


def docker(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        check=check,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.PIPE if quiet else None,
    )


def have_image(name: str) -> bool:
    return docker("image", "inspect", name, check=False, quiet=True).returncode == 0


def pulled(name: str) -> bool:
    if have_image(name):
        return True
    try:
        result = subprocess.run(
            ["docker", "pull", "-q", name], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def ensure_debian_tool(command: str, package: str) -> None:
    if shutil.which(command):
        return
    print(f"installing {package} ({command} not found) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def local_python_base() -> str:
    """A Debian bookworm minbase with python3, imported as an image (no registry needed)."""
    if have_image(LOCAL_PYTHON):
        return LOCAL_PYTHON
    ensure_debian_tool("mmdebstrap", "mmdebstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        tarball = Path(scratch) / "base.tar"
        hooks = [
            # Trust what the host trusts (a TLS-intercepting proxy's CA included).
            f"--customize-hook=copy-in {HOST_CA_BUNDLE} /etc/ssl/certs/"
            if HOST_CA_BUNDLE.exists()
            else "--customize-hook=true",
            # Smaller: no apt lists or caches, and no glibc iconv modules (Python's codecs
            # are its own; 9 MB).
            '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* '
            '"$1"/var/cache/debconf/*-old "$1"/usr/lib/x86_64-linux-gnu/gconv',
        ]
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                # /usr merged by mmdebstrap's hook, not the usrmerge package (which needs perl).
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                *(f"--dpkgopt=path-exclude=/usr/share/{part}/*" for part in DPKG_EXCLUDE),
                "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                f"--include={BASE_PACKAGES}",
                *hooks,
                "bookworm",
                str(tarball),
            ],
            check=True,
        )
        docker(
            "import",
            "--change",
            'CMD ["python3"]',
            "--change",
            "ENV LANG=C.UTF-8",
            str(tarball),
            LOCAL_PYTHON,
            quiet=True,
        )
    print(f"local base {LOCAL_PYTHON} made in {time.monotonic() - started:.0f} s", flush=True)
    return LOCAL_PYTHON


def local_uv_image() -> str:
    """An image holding only /uv: the host's uv binary (the one `make` already uses)."""
    if have_image(LOCAL_UV):
        return LOCAL_UV
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        sys.exit("no uv binary to put in the local uv image (set UV=/path/to/uv)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tar.gettarinfo(uv, arcname="uv")
        info.mode = 0o755
        with open(uv, "rb") as handle:
            tar.addfile(info, handle)
    subprocess.run(
        ["docker", "import", "-", LOCAL_UV],
        input=buffer.getvalue(),
        check=True,
        capture_output=True,
    )
    return LOCAL_UV


def build(name: str, tag: str, python_image: str, uv_image: str, ssl_cert_file: str) -> None:
    spec = IMAGES[name]
    args = {"PYTHON_IMAGE": python_image, "UV_IMAGE": uv_image, **spec["args"]}
    if ssl_cert_file:
        args["SSL_CERT_FILE"] = ssl_cert_file
    command = ["build", "--network", "host", "-f", str(DOCKERFILE), "--target", spec["target"]]
    for key, value in args.items():
        command += ["--build-arg", f"{key}={value}"]
    command += ["-t", f"cctelegram/{name}:{tag}", str(ROOT)]
    started = time.monotonic()
    print(f"== building cctelegram/{name}:{tag} (target {spec['target']})", flush=True)
    result = docker(*command, check=False, quiet=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:] + result.stderr[-6000:])
        sys.exit(f"building {name} failed")
    print(f"   built in {time.monotonic() - started:.0f} s", flush=True)


def size_mb(image: str) -> float:
    out = docker("image", "inspect", "-f", "{{.Size}}", image, quiet=True).stdout
    return int(out.strip()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(IMAGES), help="images to build")
    parser.add_argument("--tag", default=os.environ.get("CCTELEGRAM_IMAGE_TAG", "dev"))
    options = parser.parse_args()
    unknown = set(options.names) - set(IMAGES)
    if unknown:
        sys.exit(f"unknown images {sorted(unknown)}; known: {sorted(IMAGES)}")

    python_image = os.environ.get("PYTHON_IMAGE", "")
    uv_image = os.environ.get("UV_IMAGE", "")
    ssl_cert_file = os.environ.get("IMAGE_SSL_CERT_FILE", "")
    if not python_image:
        if pulled(OFFICIAL_PYTHON):
            python_image = OFFICIAL_PYTHON
        else:
            print(f"no registry answers for {OFFICIAL_PYTHON}: making a local base", flush=True)
            python_image = local_python_base()
            ssl_cert_file = ssl_cert_file or str(HOST_CA_BUNDLE)
    if not uv_image:
        uv_image = OFFICIAL_UV if pulled(OFFICIAL_UV) else local_uv_image()

    started = time.monotonic()
    for name in options.names:
        build(name, options.tag, python_image, uv_image, ssl_cert_file)
    print(f"\nbase {python_image}, uv {uv_image}; built in {time.monotonic() - started:.0f} s")
    print(f"{'image':<32} {'size MB':>8}")
    over = []
    for name in options.names:
        image = f"cctelegram/{name}:{options.tag}"
        size = size_mb(image)
        print(f"{image:<32} {size:8.1f}")
        if name not in ("nats", "cli", "sandbox") and size > SIZE_TARGET_MB:
            over.append(image)
    if over:
        print(f"over the {SIZE_TARGET_MB} MB target: {', '.join(over)}")


if __name__ == "__main__":
    main()
