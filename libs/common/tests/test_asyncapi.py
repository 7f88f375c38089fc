"""The AsyncAPI document names every catalogued subject with its payload schema."""

import json

from cctelegram_common.asyncapi import build_document
from cctelegram_common.catalog import CHANNELS
from cctelegram_common.contracts.base import Contract


def test_every_channel_is_documented_with_its_schema() -> None:
    document = json.loads(build_document())
    assert document["asyncapi"] == "3.0.0"
    schemas = document["components"]["schemas"]
    for channel in CHANNELS:
        assert channel.subject in document["channels"]
        assert channel.payload.__name__ in schemas
        assert issubclass(channel.payload, Contract)


def test_the_committed_document_is_current() -> None:
    from pathlib import Path

    committed = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"
    assert json.loads(committed.read_text()) == json.loads(build_document()), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )
