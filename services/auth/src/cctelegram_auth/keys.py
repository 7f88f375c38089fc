"""The key rules: issue, verify, list, revoke, rotate, bootstrap. Plain and testable.

A key is ``cctg_<key id>_<secret>``. The store keeps HMAC-SHA256(server secret,
"<key id>:<secret>") under the key id; verification recomputes it and compares in constant
time. The full key exists only in the caller's hands and in the reply that created it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from cctelegram_auth.store import ConflictError, KeyStore
from cctelegram_common.apikeys import ApiKey, generate_key, parse_key
from cctelegram_common.contracts.audit import AuditOutcome, AuditRecord
from cctelegram_common.contracts.auth import (
    ROLE_PERMISSIONS,
    CreatedKey,
    CreateKeyRequest,
    KeyChanged,
    KeyInfo,
    KeyList,
    KeyRecord,
    ListKeysRequest,
    Principal,
    RevokeKeyRequest,
    Role,
    RotatedKey,
    RotateKeyRequest,
    VerifyResponse,
)
from cctelegram_common.contracts.base import utc_now
from cctelegram_common.logging import get_logger

log = get_logger(__name__)

SERVICE = "auth"
BOOTSTRAP_CLIENT_ID = "dev"
BOOTSTRAP_LABEL = "development key"

Notify = Callable[[KeyChanged], Awaitable[None]]
Audit = Callable[[AuditRecord], Awaitable[object]]
Clock = Callable[[], datetime]


class KeyNotFoundError(Exception):
    """No key with this id."""


class KeyStateError(Exception):
    """The key cannot do that in its state (already revoked...)."""


async def _ignore_change(_change: KeyChanged) -> None:
    return None


async def _ignore_audit(_record: AuditRecord) -> None:
    return None


def digest(server_secret: bytes, key: ApiKey) -> str:
    return hmac.new(
        server_secret, f"{key.key_id}:{key.secret}".encode(), hashlib.sha256
    ).hexdigest()


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        server_secret: bytes,
        *,
        notify: Notify = _ignore_change,
        audit: Audit = _ignore_audit,
        clock: Clock = utc_now,
        last_used_write_interval_s: float = 60.0,
    ) -> None:
        self.store = store
        self._secret = server_secret
        self.notify = notify
        self.audit = audit
        self.clock = clock
        self.last_used_write_interval_s = last_used_write_interval_s
        self._last_used_written: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # --- verify ----------------------------------------------------------------------------
    async def verify(self, presented: str) -> VerifyResponse:
        key = parse_key(presented)
        if key is None:
            return VerifyResponse(valid=False, reason="malformed")
        found = await self.store.get(key.key_id)
        if found is None:
            return VerifyResponse(valid=False, reason="unknown")
        record, _revision = found
        if not hmac.compare_digest(record.digest, digest(self._secret, key)):
            return VerifyResponse(valid=False, reason="wrong_secret")
        now = self.clock()
        if record.revoked_at is not None:
            return VerifyResponse(valid=False, reason="revoked")
        if record.expires_at is not None and record.expires_at <= now:
            return VerifyResponse(valid=False, reason="expired")
        self._note_use(record.key_id)
        return VerifyResponse(valid=True, principal=principal_of(record))

    def _note_use(self, key_id: str) -> None:
        """Write last_used_at lazily: at most once per interval per key, off the hot path."""
        now = time.monotonic()
        last = self._last_used_written.get(key_id)
        if last is not None and now - last < self.last_used_write_interval_s:
            return
        self._last_used_written[key_id] = now
        task = asyncio.create_task(self._write_last_used(key_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_last_used(self, key_id: str) -> None:
        try:
            found = await self.store.get(key_id)
            if found is None:
                return
            record, revision = found
            await self.store.update(
                record.model_copy(update={"last_used_at": self.clock()}), revision
            )
        except ConflictError:
            pass  # someone changed the record meanwhile; the next use writes it
        except Exception as error:
            log.warning("last_used_write_failed", key_id=key_id, error=type(error).__name__)

    async def drain(self) -> None:
        """Let pending last_used writes finish (on stop, in tests)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- management ------------------------------------------------------------------------
    async def create(self, request: CreateKeyRequest) -> CreatedKey:
        now = self.clock()
        expires_at = now + timedelta(seconds=request.expires_in_s) if request.expires_in_s else None
        created, record = await self._issue(
            client_id=request.client_id,
            role=request.role,
            label=request.label,
            rate_limit_per_minute=request.rate_limit_per_minute,
            expires_at=expires_at,
        )
        await self._audited("key.created", record, request.actor, request.request_id)
        await self.notify(KeyChanged(key_id=record.key_id, change="created"))
        return created

    async def _issue(
        self,
        *,
        client_id: str,
        role: Role,
        label: str,
        rate_limit_per_minute: int | None,
        expires_at: datetime | None,
    ) -> tuple[CreatedKey, KeyRecord]:
        now = self.clock()
        for _ in range(5):  # a 12-char id colliding is astronomically rare; retry anyway
            key = generate_key()
            record = KeyRecord(
                key_id=key.key_id,
                digest=digest(self._secret, key),
                client_id=client_id,
                role=role,
                label=label,
                rate_limit_per_minute=rate_limit_per_minute,
                created_at=now,
                expires_at=expires_at,
            )
            try:
                await self.store.create(record)
            except ConflictError:
                continue
            return CreatedKey(api_key=key.full, key=KeyInfo.of(record, now)), record
        raise KeyStateError("could not allocate a key id")

    async def list(self, request: ListKeysRequest) -> KeyList:
        now = self.clock()
        infos: list[KeyInfo] = []
        for key_id in sorted(await self.store.key_ids()):
            found = await self.store.get(key_id)
            if found is None:
                continue
            info = KeyInfo.of(found[0], now)
            if request.client_id is not None and info.client_id != request.client_id:
                continue
            if info.active or request.include_inactive:
                infos.append(info)
        infos.sort(key=lambda info: info.created_at)
        return KeyList(keys=tuple(infos))

    async def revoke(self, request: RevokeKeyRequest) -> KeyInfo:
        for _ in range(5):
            record, revision = await self._get(request.key_id)
            if record.revoked_at is not None:
                return KeyInfo.of(record, self.clock())  # idempotent
            revoked = record.model_copy(update={"revoked_at": self.clock()})
            try:
                await self.store.update(revoked, revision)
            except ConflictError:
                continue
            await self.notify(KeyChanged(key_id=record.key_id, change="revoked"))
            await self._audited("key.revoked", revoked, request.actor, request.request_id)
            return KeyInfo.of(revoked, self.clock())
        raise KeyStateError("the key kept changing; try again")

    async def rotate(self, request: RotateKeyRequest) -> RotatedKey:
        record, revision = await self._get(request.key_id)
        now = self.clock()
        info = KeyInfo.of(record, now)
        if not info.active:
            raise KeyStateError("only an active key can be rotated")
        created, new_record = await self._issue(
            client_id=record.client_id,
            role=record.role,
            label=record.label,
            rate_limit_per_minute=record.rate_limit_per_minute,
            expires_at=record.expires_at,
        )
        grace_end = now + timedelta(seconds=request.old_key_valid_for_s)
        changes: dict[str, object] = {"rotated_to": new_record.key_id}
        if request.old_key_valid_for_s == 0:
            changes["revoked_at"] = now
        elif record.expires_at is None or record.expires_at > grace_end:
            changes["expires_at"] = grace_end
        old = record.model_copy(update=changes)
        try:
            await self.store.update(old, revision)
        except ConflictError:
            # Leave no orphan behind: the new key never left this process.
            found = await self.store.get(new_record.key_id)
            if found is not None:
                await self.store.update(new_record.model_copy(update={"revoked_at": now}), found[1])
            raise KeyStateError("the key changed during rotation; try again") from None
        await self.notify(KeyChanged(key_id=record.key_id, change="rotated"))
        await self._audited(
            "key.rotated", old, request.actor, request.request_id, target=new_record.key_id
        )
        return RotatedKey(api_key=created.api_key, key=created.key, old_key=KeyInfo.of(old, now))

    async def ensure_bootstrap(self, presented: str) -> str:
        """Make the development key exist (idempotent). Returns what was done."""
        key = parse_key(presented)
        if key is None:
            raise ValueError("the bootstrap key file does not hold a cctg_<id>_<secret> key")
        wanted = digest(self._secret, key)
        found = await self.store.get(key.key_id)
        if found is not None:
            record, revision = found
            if record.revoked_at is not None:
                log.warning("bootstrap_key_revoked", key_id=key.key_id)
                return "revoked"
            if hmac.compare_digest(record.digest, wanted):
                return "present"
            # The server secret changed since the record was written (a new secret file):
            # the file's key is the source of truth for the development key.
            await self.store.update(record.model_copy(update={"digest": wanted}), revision)
            await self.notify(KeyChanged(key_id=key.key_id, change="updated"))
            return "updated"
        record = KeyRecord(
            key_id=key.key_id,
            digest=wanted,
            client_id=BOOTSTRAP_CLIENT_ID,
            role=Role.ADMIN,
            label=BOOTSTRAP_LABEL,
            created_at=self.clock(),
        )
        try:
            await self.store.create(record)
        except ConflictError:
            return "present"  # another replica created it at the same moment
        await self._audited("key.created", record, "bootstrap", None)
        return "created"

    # --- helpers ---------------------------------------------------------------------------
    async def _get(self, key_id: str) -> tuple[KeyRecord, int]:
        found = await self.store.get(key_id)
        if found is None:
            raise KeyNotFoundError(key_id)
        return found

    async def _audited(
        self,
        action: str,
        record: KeyRecord,
        actor: str | None,
        request_id: str | None,
        *,
        target: str | None = None,
    ) -> None:
        await self.audit(
            AuditRecord(
                service=SERVICE,
                action=action,
                outcome=AuditOutcome.SUCCESS,
                client_id=actor,
                key_id=record.key_id,
                request_id=request_id,
                target=target or record.key_id,
                reason=f"client={record.client_id} role={record.role.value}",
            )
        )


def principal_of(record: KeyRecord) -> Principal:
    return Principal(
        client_id=record.client_id,
        key_id=record.key_id,
        role=record.role,
        permissions=ROLE_PERMISSIONS[record.role],
        rate_limit_per_minute=record.rate_limit_per_minute,
        expires_at=record.expires_at,
    )
