"""The object store helper against a real nats-server: streamed in and out byte-identical,
readable by nats-py's own ObjectStore, limits and owners."""

import os
from collections.abc import AsyncIterator

import nats
import pytest

from cctelegram_common import files, streams, subjects
from cctelegram_common.contracts.files import FileKind, KindChoice
from cctelegram_testing.nats import NatsServer


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_file_goes_in_and_out_in_chunks_byte_identical(fresh_nats: NatsServer) -> None:
    client = await nats.connect(fresh_nats.url)
    try:
        js = client.jetstream()
        await streams.provision(js)
        data = os.urandom(3 * files.CHUNK_BYTES + 12345)
        info = await files.store(
            js,
            "f1",
            pieces(data, 65536 + 7),
            name="report.bin",
            content_type="application/octet-stream",
            kind=FileKind.DOCUMENT,
            owner="client-a",
            max_bytes=len(data),
        )
        assert info.size == len(data)
        stored = await files.lookup(js, "f1")
        assert stored.owner == "client-a"
        assert stored.file == info
        received = b"".join([chunk async for chunk in stored.chunks(js)])
        assert received == data
        # The layout is the Object Store's: nats-py reads it too.
        store = await js.object_store(subjects.OBJ_FILES)
        assert (await store.get("f1")).data == data

        with pytest.raises(files.FileNotFoundInStoreError):
            await files.lookup(js, "nope")

        with pytest.raises(files.FileTooLargeError):
            await files.store(
                js, "f2", pieces(data, 1000), name="x", content_type="a/b",
                kind=FileKind.DOCUMENT, owner=None, max_bytes=len(data) - 1,
            )  # fmt: skip
        with pytest.raises(files.FileNotFoundInStoreError):
            await files.lookup(js, "f2")

        empty = await files.store(
            js, "f3", pieces(b"", 1), name="e", content_type="text/plain",
            kind=FileKind.DOCUMENT, owner=None, max_bytes=10,
        )  # fmt: skip
        assert empty.size == 0
        assert [chunk async for chunk in (await files.lookup(js, "f3")).chunks(js)] == []
        assert await files.assign_owner(js, "f3", "client-b")
        assert not await files.assign_owner(js, "f3", "client-c")
        assert (await files.lookup(js, "f3")).owner == "client-b"
    finally:
        await client.close()


def test_kind_and_type_rules() -> None:
    assert files.guess_type("a.png", None) == "image/png"
    assert files.guess_type("a.png", "application/octet-stream") == "image/png"
    assert files.guess_type("a", "Text/Plain; charset=utf-8") == "text/plain"
    assert files.choose_kind(KindChoice.AUTO, "image/png", 100) is FileKind.PHOTO
    assert files.choose_kind(KindChoice.AUTO, "image/png", 11 * 2**20) is FileKind.DOCUMENT
    assert files.choose_kind(KindChoice.AUTO, "text/plain", 100) is FileKind.DOCUMENT
    assert files.photo_refusal("text/plain", 10) is not None
    assert files.photo_refusal("image/jpeg", 11 * 2**20) is not None
    assert files.photo_refusal("image/jpeg", 100) is None
