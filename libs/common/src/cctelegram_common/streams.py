"""JetStream stream and KV bucket definitions, and their idempotent provisioning."""

from __future__ import annotations

from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from cctelegram_common import subjects

DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class StreamSpec:
    """One stream of the suite: what it holds and for how long."""

    name: str
    subjects: tuple[str, ...]
    description: str
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    max_age_s: float | None = None
    duplicate_window_s: float = 120.0
    allow_msg_ttl: bool = False

    def config(self, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            description=self.description,
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
            num_replicas=replicas,
            allow_msg_ttl=self.allow_msg_ttl or None,
        )


@dataclass(frozen=True)
class BucketSpec:
    """One KV bucket of the suite."""

    bucket: str
    description: str
    history: int = 1
    ttl_s: float | None = None
    # Per-key TTLs (heartbeats, leases) need the server's message-TTL feature switched on.
    per_key_ttl: bool = False
    # Memory storage: for state that may be lost with the server (rate-limit buckets).
    memory: bool = False

    def config(self, replicas: int) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self.bucket,
            description=self.description,
            history=self.history,
            ttl=self.ttl_s,
            storage=StorageType.MEMORY if self.memory else StorageType.FILE,
            replicas=replicas,
            limit_marker_ttl=1.0 if self.per_key_ttl else None,
            # Reads as direct gets: the server answers with the stored message itself instead
            # of a JSON API reply (cheaper on both sides; what `nats kv add` does by default).
            direct=True,
        )


def stream_specs(
    responses_max_age_s: float = 30 * DAY_S, audit_max_age_s: float = 90 * DAY_S
) -> tuple[StreamSpec, ...]:
    """The streams of the suite (see ARCHITECTURE.md §4)."""
    return (
        StreamSpec(
            subjects.STREAM_EVENTS,
            # Not `cctg.events.>`: that would also capture the events service's RPC subjects
            # (`cctg.events.rpc.*`) and answer requests with a PubAck.
            (subjects.EVENT_SUBMIT, subjects.APPROVALS_ALL),
            "Submitted notification and approval commands (history, dedup window)",
            max_age_s=7 * DAY_S,
            duplicate_window_s=600.0,
        ),
        StreamSpec(
            subjects.STREAM_OUTBOX,
            (subjects.OUTBOX_ALL,),
            "Rendered Telegram operations waiting for the notifier (work queue)",
            retention=RetentionPolicy.WORK_QUEUE,
            duplicate_window_s=600.0,
        ),
        StreamSpec(
            subjects.STREAM_UPDATES,
            (subjects.TELEGRAM_UPDATES,),
            "Inbound Telegram updates, deduplicated by update_id",
            max_age_s=DAY_S,
            duplicate_window_s=3600.0,
        ),
        StreamSpec(
            subjects.STREAM_RESPONSES,
            (subjects.RESPONSES_ALL,),
            "People's answers: button presses, replies, commands",
            max_age_s=responses_max_age_s,
        ),
        StreamSpec(
            subjects.STREAM_AUDIT,
            (subjects.AUDIT_ALL,),
            "Security and control audit trail",
            max_age_s=audit_max_age_s,
        ),
        StreamSpec(
            subjects.STREAM_DELIVERIES,
            (subjects.DELIVERIES_ALL,),
            "The notifier's delivery reports (sent / failed) per outbox message",
            max_age_s=7 * DAY_S,
        ),
        StreamSpec(
            subjects.STREAM_DEAD_LETTER,
            (subjects.DEAD_LETTER_ALL,),
            "Outbox messages that could not be delivered, with reason and attempts",
            max_age_s=30 * DAY_S,
        ),
    )


BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(subjects.KV_KEYS, "API key records (digest, client, role, limits)", history=5),
    BucketSpec(subjects.KV_APPROVALS, "Approval state, revision-checked", history=5),
    BucketSpec(
        subjects.KV_DELIVERIES,
        "Per outbox message: Telegram message ids and status (idempotency record)",
        ttl_s=7 * DAY_S,
    ),
    BucketSpec(
        subjects.KV_BRIDGE,
        "Bridge desired state, instance heartbeats, poller lease and offset",
        per_key_ttl=True,
    ),
    BucketSpec(subjects.KV_EVENT_STATUS, "Per event: queued / sent / failed", ttl_s=7 * DAY_S),
    BucketSpec(subjects.KV_STATE, "Small domain state: modes, quiet hours, todos", history=3),
    # A session idle this long is gone with its rules (every tool use rewrites the record).
    BucketSpec(subjects.KV_SESSIONS, "Claude Code sessions: project, activity, rules", ttl_s=DAY_S),
    # An idle key's entry is gone after 5 min: by then its bucket is full again anyway.
    BucketSpec(
        subjects.KV_RATE_LIMITS,
        "Per API key: the rate-limit token bucket all gateway replicas share",
        ttl_s=300.0,
        memory=True,
    ),
)


@dataclass(frozen=True)
class ObjectBucketSpec:
    """One object store bucket of the suite (its stream is ``OBJ_<bucket>``)."""

    bucket: str
    description: str
    ttl_s: float | None = None

    @property
    def stream(self) -> str:
        return f"OBJ_{self.bucket}"

    def config(self, replicas: int, ttl_s: float | None = None) -> ObjectStoreConfig:
        return ObjectStoreConfig(
            bucket=self.bucket,
            description=self.description,
            ttl=ttl_s if ttl_s is not None else self.ttl_s,
            storage=StorageType.FILE,
            replicas=replicas,
        )


# Files age out after a week: long enough for an agent to fetch what a person sent and for
# a delivery to be retried, short enough that 50 MB uploads do not pile up for ever.
FILES_MAX_AGE_S = 7 * DAY_S
OBJECT_BUCKETS: tuple[ObjectBucketSpec, ...] = (
    ObjectBucketSpec(
        subjects.OBJ_FILES,
        "Files both ways: uploads to send, documents and photos people sent",
        ttl_s=FILES_MAX_AGE_S,
    ),
)


class ProvisioningError(RuntimeError):
    """A stream or bucket is missing and this process may not create it."""


async def provision(
    js: JetStreamContext,
    *,
    replicas: int = 1,
    create: bool = True,
    responses_max_age_s: float = 30 * DAY_S,
    files_max_age_s: float = FILES_MAX_AGE_S,
) -> list[str]:
    """Create (or, with ``create=False``, only check) every stream and bucket. Idempotent.

    Returns the names that were created. Existing streams are left as they are apart from
    their subject list, so an operator's tuning (max age, replicas) survives restarts.
    """
    created: list[str] = []
    for spec in stream_specs(responses_max_age_s=responses_max_age_s):
        try:
            info = await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            if not create:
                raise ProvisioningError(f"stream {spec.name} is missing") from None
            await js.add_stream(spec.config(replicas))
            created.append(spec.name)
            continue
        if create and sorted(info.config.subjects or []) != sorted(spec.subjects):
            info.config.subjects = list(spec.subjects)
            await js.update_stream(info.config)
    for bucket in BUCKETS:
        try:
            await js.key_value(bucket.bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                raise ProvisioningError(f"KV bucket {bucket.bucket} is missing") from None
            await js.create_key_value(bucket.config(replicas))
            created.append(bucket.bucket)
            continue
        if create:
            await _allow_direct_gets(js, f"KV_{bucket.bucket}")
    for object_bucket in OBJECT_BUCKETS:
        try:
            await js.stream_info(object_bucket.stream)
        except nats.js.errors.NotFoundError:
            if not create:
                raise ProvisioningError(f"object store {object_bucket.bucket} is missing") from None
            await js.create_object_store(
                object_bucket.bucket, object_bucket.config(replicas, files_max_age_s)
            )
            created.append(object_bucket.bucket)
    return created


async def _allow_direct_gets(js: JetStreamContext, stream: str) -> None:
    """Switch direct gets on for a bucket made before they were (a mutable setting)."""
    info = await js.stream_info(stream)
    if not info.config.allow_direct:
        info.config.allow_direct = True
        await js.update_stream(info.config)


async def missing(js: JetStreamContext) -> list[str]:
    """Names of the streams and buckets that do not exist (for readiness checks)."""
    absent: list[str] = []
    for spec in stream_specs():
        try:
            await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            absent.append(spec.name)
    for bucket in BUCKETS:
        try:
            await js.stream_info(f"KV_{bucket.bucket}")
        except nats.js.errors.NotFoundError:
            absent.append(bucket.bucket)
    for object_bucket in OBJECT_BUCKETS:
        try:
            await js.stream_info(object_bucket.stream)
        except nats.js.errors.NotFoundError:
            absent.append(object_bucket.bucket)
    return absent
