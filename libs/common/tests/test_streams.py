"""Provisioning against a real nats-server: idempotent, and a check-only mode that refuses."""

import nats
import pytest
from nats.js import JetStreamContext

from cctelegram_common import streams
from cctelegram_testing.nats import NatsServer


async def direct_gets(js: JetStreamContext, bucket: str) -> bool:
    """Whether a bucket's reads are direct gets (the server answers with the message)."""
    return bool((await js.stream_info(f"KV_{bucket}")).config.allow_direct)


async def test_provision_is_idempotent_and_complete(fresh_nats: NatsServer) -> None:
    client = await nats.connect(fresh_nats.url)
    try:
        js = client.jetstream()
        with pytest.raises(streams.ProvisioningError):
            await streams.provision(js, create=False)
        created = await streams.provision(js)
        assert set(created) == {spec.name for spec in streams.stream_specs()} | {
            bucket.bucket for bucket in streams.BUCKETS
        } | {bucket.bucket for bucket in streams.OBJECT_BUCKETS}
        assert await streams.provision(js) == []
        assert await streams.missing(js) == []
        outbox = await js.stream_info("CCTG_OUTBOX")
        assert str(outbox.config.retention) in {"workqueue", "RetentionPolicy.WORK_QUEUE"}
        for bucket in streams.BUCKETS:
            assert await direct_gets(js, bucket.bucket)
        files = await js.stream_info("OBJ_cctg_files")
        assert files.config.max_age == streams.FILES_MAX_AGE_S
        assert files.config.allow_direct
    finally:
        await client.close()


async def test_provision_switches_direct_gets_on_for_an_older_bucket(
    fresh_nats: NatsServer,
) -> None:
    client = await nats.connect(fresh_nats.url)
    try:
        js = client.jetstream()
        older = streams.BUCKETS[0]
        await js.create_key_value(older.config(1), direct=False)
        assert not await direct_gets(js, older.bucket)
        await streams.provision(js)
        assert await direct_gets(js, older.bucket)
    finally:
        await client.close()
