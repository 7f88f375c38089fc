"""The webhook signature scheme and the destination guard."""

from __future__ import annotations

import asyncio
import time

import pytest

from cctelegram_common.webhooks import (
    AllowList,
    DestinationRefusedError,
    check_callback_url,
    check_resolved,
    sign,
    verify_signature,
)

SECRET = "whsec_test"


def test_a_signature_verifies_only_for_its_body_secret_and_time() -> None:
    body = b'{"event":"approval.approved"}'
    header = sign(SECRET, body)
    assert header.startswith("t=")
    assert ",v1=" in header
    assert verify_signature(SECRET, header, body)
    assert not verify_signature(SECRET, header, body + b" ")
    assert not verify_signature("whsec_other", header, body)
    old = sign(SECRET, body, int(time.time()) - 3600)
    assert not verify_signature(SECRET, old, body)
    for broken in ("", "t=abc,v1=00", "v1=00", header.replace("v1=", "v0=")):
        assert not verify_signature(SECRET, broken, body)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x",
        "https://172.16.5.4/x",
        "https://192.168.1.1/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://localhost/x",
        "https://localhost./x",
        "https://0.0.0.0/x",
        "http://ci.example.com/x",
        "ftp://ci.example.com/x",
        "https://user:pw@ci.example.com/x",
        "https:///nohost",
        "https://ci.example.com:99999/x",
    ],
)
def test_private_plain_http_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefusedError):
        check_callback_url(url, AllowList())


def test_listed_hosts_and_networks_are_allowed_over_http() -> None:
    allowed = AllowList.parse("127.0.0.1, hooks.internal ,10.20.0.0/16")
    assert check_callback_url("http://127.0.0.1:8080/hook", allowed) == "127.0.0.1"
    assert check_callback_url("http://hooks.internal/x", allowed) == "hooks.internal"
    assert check_callback_url("https://10.20.3.4/x", allowed) == "10.20.3.4"
    with pytest.raises(DestinationRefusedError):
        check_callback_url("https://10.21.0.1/x", allowed)
    assert check_callback_url("https://ci.example.com/x", AllowList()) == "ci.example.com"


async def test_a_name_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolves_privately(host: str, port: int, **_kwargs: object) -> list[object]:
        return [(2, 1, 6, "", ("10.9.8.7", port))]

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "getaddrinfo", resolves_privately)
    with pytest.raises(DestinationRefusedError, match=r"resolves to 10\.9\.8\.7"):
        await check_resolved("https://hooks.example.com/x", AllowList())
    await check_resolved("https://hooks.example.com/x", AllowList.parse("10.9.0.0/16"))
    await check_resolved("https://hooks.example.com/x", AllowList.parse("hooks.example.com"))
