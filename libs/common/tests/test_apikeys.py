"""API keys have the recognisable shape, enough entropy, and never print their secret."""

from cctelegram_common.apikeys import generate_key, parse_key


def test_generated_keys_parse_back_and_are_unique() -> None:
    keys = [generate_key() for _ in range(50)]
    assert len({key.full for key in keys}) == 50
    for key in keys:
        assert parse_key(key.full) == key
        assert len(key.secret) >= 43  # 32 random bytes, base64url
        assert key.secret not in repr(key)


def test_malformed_keys_are_refused() -> None:
    for presented in ["", "cctg_", "Bearer x", "cctg_short_secret", "xxxx_" + "a" * 60]:
        assert parse_key(presented) is None
