"""Provisioning against a real nats-server: idempotent, and a check-only mode that refuses."""

import nats
import pytest

from cctelegram_common import streams
from cctelegram_common.natsserver import NatsServer


async def test_provision_is_idempotent_and_complete(fresh_nats: NatsServer) -> None:
    client = await nats.connect(fresh_nats.url)
    try:
        js = client.jetstream()
        with pytest.raises(streams.ProvisioningError):
            await streams.provision(js, create=False)
        created = await streams.provision(js)
        assert set(created) == {spec.name for spec in streams.stream_specs()} | {
            bucket.bucket for bucket in streams.BUCKETS
        }
        assert await streams.provision(js) == []
        assert await streams.missing(js) == []
        outbox = await js.stream_info("CCTG_OUTBOX")
        assert str(outbox.config.retention) in {"workqueue", "RetentionPolicy.WORK_QUEUE"}
    finally:
        await client.close()
