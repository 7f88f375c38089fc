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
from cctelegram_common.due_index import upgrade_approvals

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
    allow_msg_schedules: bool = False
    max_msgs_per_subject: int = -1
    # Its max age is the history time (``cctelegram provision`` applies a new one).
    follows_history: bool = False

    def config(self, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            description=self.description,
            retention=self.retention,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_s,
            # The server refuses a dedup window longer than the max age (a short history time).
            duplicate_window=min(
                self.duplicate_window_s, self.max_age_s or self.duplicate_window_s
            ),
            num_replicas=replicas,
            allow_msg_ttl=self.allow_msg_ttl or None,
            allow_msg_schedules=self.allow_msg_schedules or None,
            max_msgs_per_subject=self.max_msgs_per_subject,
        )


@dataclass(frozen=True)
class BucketSpec:
    """One KV bucket of the suite."""

    bucket: str
    description: str
    history: int = 1
    ttl_s: float | None = None
    # Per-key TTLs (heartbeats, leases, retention) need the server's message-TTL feature on.
    per_key_ttl: bool = False
    # Memory storage: for state that may be lost with the server (rate-limit buckets).
    memory: bool = False
    # Provisioning brings an existing bucket to ``history`` (the approvals bucket went from 5
    # to 1 so that a decided record's TTL removes the key, not just its latest revision).
    enforce_history: bool = False
    # Its max age is the history time (``cctelegram provision`` applies a new one).
    follows_history: bool = False

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


DEFAULT_HISTORY_S = 30 * DAY_S


def stream_specs(
    responses_max_age_s: float = DEFAULT_HISTORY_S,
    audit_max_age_s: float = 90 * DAY_S,
    history_s: float = DEFAULT_HISTORY_S,
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
            max_age_s=history_s,
            follows_history=True,
        ),
        StreamSpec(
            subjects.STREAM_DEAD_LETTER,
            (subjects.DEAD_LETTER_ALL,),
            "Outbox messages that could not be delivered, with reason and attempts",
            max_age_s=30 * DAY_S,
        ),
        StreamSpec(
            subjects.STREAM_WEBHOOKS,
            (subjects.WEBHOOKS_ALL,),
            "Decision webhooks waiting to be POSTed (work queue; retried for an hour)",
            retention=RetentionPolicy.WORK_QUEUE,
            # Longer than the retry window: a delivery is dead-lettered, never aged out.
            max_age_s=2 * DAY_S,
            duplicate_window_s=600.0,
        ),
        StreamSpec(
            subjects.STREAM_APPROVAL_DUE,
            (subjects.APPROVAL_DUE_ALL, subjects.APPROVAL_TIMEOUT_ALL),
            "Due-time index: one scheduled message per open approval, fired at its expiry",
            # No max age: a schedule lives as long as its approval is open (up to 7 days);
            # fired messages carry their own TTL.
            allow_msg_ttl=True,
            allow_msg_schedules=True,
            max_msgs_per_subject=1,
        ),
    )


def bucket_specs(history_s: float = DEFAULT_HISTORY_S) -> tuple[BucketSpec, ...]:
    """The KV buckets of the suite; ``history_s`` is how long history is kept (the
    ``history_days`` setting): decided approvals (a per-key TTL the events service sets),
    event statuses and delivery records (the bucket's max age)."""
    return (
        BucketSpec(subjects.KV_KEYS, "API key records (digest, client, role, limits)", history=5),
        BucketSpec(
            subjects.KV_APPROVALS,
            "Approval state, revision-checked; decided ones expire after the history time",
            history=1,
            per_key_ttl=True,
            enforce_history=True,
        ),
        BucketSpec(
            subjects.KV_DELIVERIES,
            "Per outbox message: Telegram message ids and status (idempotency record)",
            ttl_s=history_s,
            follows_history=True,
        ),
        BucketSpec(
            subjects.KV_BRIDGE,
            "Bridge desired state, instance heartbeats, poller lease and offset",
            per_key_ttl=True,
        ),
        BucketSpec(
            subjects.KV_EVENT_STATUS,
            "Per event: queued / sent / failed",
            ttl_s=history_s,
            follows_history=True,
        ),
        BucketSpec(
            subjects.KV_STATE,
            "Small domain state: modes, quiet hours, todos, card references (per-key TTL)",
            history=3,
            per_key_ttl=True,
        ),
        # A session idle this long is gone with its rules (every tool use rewrites the record).
        BucketSpec(
            subjects.KV_SESSIONS, "Claude Code sessions: project, activity, rules", ttl_s=DAY_S
        ),
        # A week: longer than Telegram keeps an update, so a redelivered one is still known.
        BucketSpec(
            subjects.KV_UPDATES_SEEN, "events: processed Telegram update ids", ttl_s=7 * DAY_S
        ),
        # An idle key's entry is gone after 5 min: by then its bucket is full again anyway.
        BucketSpec(
            subjects.KV_RATE_LIMITS,
            "Per API key: the rate-limit token bucket all gateway replicas share",
            ttl_s=300.0,
            memory=True,
        ),
        BucketSpec(
            subjects.KV_WEBHOOK_SECRETS,
            "Per client: webhook signing secret, encrypted under auth's server secret",
            history=2,
        ),
        BucketSpec(subjects.KV_ROUTES, "Route rules: bot, chat, topic by client/project/type"),
    )


BUCKETS: tuple[BucketSpec, ...] = bucket_specs()


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
    responses_max_age_s: float = DEFAULT_HISTORY_S,
    history_s: float = DEFAULT_HISTORY_S,
    apply_history: bool = False,
    files_max_age_s: float = FILES_MAX_AGE_S,
) -> list[str]:
    """Create (or, with ``create=False``, only check) every stream and bucket. Idempotent.

    Returns the names that were created. Existing streams are left as they are apart from
    their subject list and what this version's layout needs (per-key TTL, the approvals
    bucket's history of 1, the upgrade of approvals written by the previous layout), so an
    operator's tuning (max age, replicas) survives restarts. ``apply_history`` (what
    ``cctelegram provision`` does) also sets the max age of the existing history streams and
    buckets to ``history_s``; services leave it, so replicas with other settings never fight.
    """
    created: list[str] = []
    for spec in stream_specs(responses_max_age_s=responses_max_age_s, history_s=history_s):
        try:
            info = await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            if not create:
                raise ProvisioningError(f"stream {spec.name} is missing") from None
            await js.add_stream(spec.config(replicas))
            created.append(spec.name)
            continue
        changed = False
        if create and sorted(info.config.subjects or []) != sorted(spec.subjects):
            info.config.subjects = list(spec.subjects)
            changed = True
        if create and apply_history and spec.follows_history:
            changed |= _set_max_age(info.config, history_s)
        if changed:
            await js.update_stream(info.config)
    for bucket in bucket_specs(history_s):
        try:
            await js.key_value(bucket.bucket)
        except nats.js.errors.BucketNotFoundError:
            if not create:
                raise ProvisioningError(f"KV bucket {bucket.bucket} is missing") from None
            await js.create_key_value(bucket.config(replicas))
            created.append(bucket.bucket)
            continue
        if create:
            await _upgrade_bucket(js, bucket, history_s if apply_history else None)
    if create:
        await upgrade_approvals(js, history_s)
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


def _set_max_age(config: StreamConfig, max_age_s: float) -> bool:
    """Give a stream a new max age (and a dedup window no longer than it). True if changed."""
    if config.max_age is not None and abs(config.max_age - max_age_s) < 1:
        return False
    config.max_age = max_age_s
    config.duplicate_window = min(config.duplicate_window or max_age_s, max_age_s)
    return True


async def _upgrade_bucket(
    js: JetStreamContext, bucket: BucketSpec, history_s: float | None = None
) -> None:
    """Bring a bucket made by an earlier version up to this layout (mutable settings only):
    direct gets, per-key TTL (which cannot be switched off again), the history it needs, and
    with ``history_s`` the max age of a history bucket."""
    info = await js.stream_info(f"KV_{bucket.bucket}")
    config = info.config
    changed = False
    if history_s is not None and bucket.follows_history:
        changed |= _set_max_age(config, history_s)
    if not config.allow_direct:
        config.allow_direct = True
        changed = True
    if bucket.per_key_ttl and not config.allow_msg_ttl:
        config.allow_msg_ttl = True
        config.subject_delete_marker_ttl = config.subject_delete_marker_ttl or 1.0
        changed = True
    if bucket.enforce_history and config.max_msgs_per_subject != bucket.history:
        config.max_msgs_per_subject = bucket.history
        changed = True
    if changed:
        await js.update_stream(config)


async def missing(js: JetStreamContext) -> list[str]:
    """Names of the streams and buckets that do not exist (for readiness checks)."""
    absent: list[str] = []
    for spec in stream_specs():
        try:
            await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            absent.append(spec.name)
    for bucket in bucket_specs():
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
