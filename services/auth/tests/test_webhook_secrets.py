"""Webhook secrets at rest: sealed under the server secret, opened only with it."""

from __future__ import annotations

import secrets

import pytest

from cctelegram_auth.webhooks import SecretBox, bucket_key


def test_a_sealed_secret_opens_only_with_the_same_server_secret_and_client() -> None:
    plain = secrets.token_bytes(32)
    box = SecretBox(b"s" * 32)
    sealed = box.seal("ci@example", plain)
    assert plain.hex() not in sealed
    assert box.open("ci@example", sealed) == plain
    assert box.seal("ci@example", plain) != sealed  # a fresh nonce each time
    with pytest.raises(ValueError, match="MAC"):
        SecretBox(b"t" * 32).open("ci@example", sealed)
    with pytest.raises(ValueError, match="MAC"):
        box.open("someone-else", sealed)


def test_client_ids_become_valid_bucket_keys() -> None:
    key = bucket_key("ci:deploy@example.com")
    assert key.isalnum()
    assert len(key) == 41
