"""Decision webhooks: the signature scheme and the destination guard (SSRF).

Signature (like Stripe's): ``X-CCTelegram-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>">`` keyed by the client's webhook secret. ``verify_signature`` is what a
receiver runs (tests and the README use it).

Destinations: ``https`` anywhere public, or any scheme to a host listed in
``CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS`` (comma-separated host names or CIDRs). Loopback,
private, link-local, multicast and reserved addresses are refused unless listed. The gateway
checks the URL as written (an IP literal, ``localhost``); the sender checks again every
address the name resolves to, just before each attempt.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

ALLOWED_HOSTS_ENV = "CCTELEGRAM_WEBHOOK_ALLOWED_HOSTS"
DEFAULT_TOLERANCE_S = 300

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefusedError(ValueError):
    """The callback URL may not be called; the message says why."""


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks a webhook may reach even over http or in a private range."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> AllowList:
        hosts: set[str] = set()
        networks: list[IpNetwork] = []
        for part in (raw or "").split(","):
            entry = part.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def from_env(cls) -> AllowList:
        return cls.parse(os.environ.get(ALLOWED_HOSTS_ENV))

    def lists_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        address = _ip(host)
        return address is not None and self.lists_address(address)

    def lists_address(self, address: IpAddress) -> bool:
        return any(address in network for network in self.networks) or str(address) in self.hosts


def _ip(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_internal(address: IpAddress) -> bool:
    """Not a public unicast address: loopback, private, link-local, multicast, reserved..."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_callback_url(url: str, allowed: AllowList) -> str:
    """The host of ``url`` when it may be called as written; raises ``DestinationRefusedError``.
    Names are not resolved here (``check_resolved`` does that before each attempt)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        _port = parts.port
    except ValueError:
        raise DestinationRefusedError("not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise DestinationRefusedError("must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefusedError("must not carry credentials (user:password@)")
    if allowed.lists_host(host):
        return host
    if parts.scheme != "https":
        raise DestinationRefusedError(
            f"must use https (or its host must be listed in {ALLOWED_HOSTS_ENV})"
        )
    address = _ip(host)
    if host == "localhost" or host.endswith(".localhost") or (address and is_internal(address)):
        raise DestinationRefusedError(
            f"{host} is a loopback or private address; list it in {ALLOWED_HOSTS_ENV} to allow it"
        )
    return host


async def check_resolved(url: str, allowed: AllowList) -> None:
    """``check_callback_url``, then every address the host resolves to must be public (or
    listed): a public name pointing at 10.0.0.5 is refused like the literal."""
    host = check_callback_url(url, allowed)
    if allowed.lists_host(host):
        return
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise DestinationRefusedError(f"{host} does not resolve ({error.strerror})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if is_internal(address) and not allowed.lists_address(address):
            raise DestinationRefusedError(
                f"{host} resolves to {address}, a loopback or private address; list it in "
                f"{ALLOWED_HOSTS_ENV} to allow it"
            )


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-CCTelegram-Signature`` value for ``body`` at ``timestamp`` (now by default)."""
    moment = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{moment}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={moment},v1={mac}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver runs: the header parses, is recent, and one ``v1`` matches the body."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [value for name, value in fields if name.strip() == "t"]
    macs = [value.strip() for name, value in fields if name.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not macs:
        return False
    moment = int(stamps[0])
    if abs((time.time() if now is None else now) - moment) > tolerance_s:
        return False
    expected = sign(secret, body, moment).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, mac) for mac in macs)
