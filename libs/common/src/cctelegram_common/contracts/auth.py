"""Roles, permissions, key records, and the auth service's RPCs (verify, key management)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from cctelegram_common.contracts.base import Contract


class Permission(StrEnum):
    EVENTS_SEND = "events:send"
    EVENTS_READ = "events:read"
    APPROVALS_REQUEST = "approvals:request"
    APPROVALS_READ = "approvals:read"
    RESPONSES_READ = "responses:read"
    RESPONSES_MANAGE = "responses:manage"
    READ_ALL = "read:all"
    BRIDGE_READ = "bridge:read"
    BRIDGE_CONTROL = "bridge:control"
    MODES_WRITE = "modes:write"
    MODES_DEFAULT = "modes:default"
    TASKS_WRITE = "tasks:write"
    TASKS_READ = "tasks:read"
    KEYS_MANAGE = "keys:manage"


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    AGENT = "agent"
    READER = "reader"


_READ_OWN = frozenset(
    {
        Permission.EVENTS_READ,
        Permission.APPROVALS_READ,
        Permission.RESPONSES_READ,
        Permission.BRIDGE_READ,
        Permission.TASKS_READ,
    }
)
_AGENT = _READ_OWN | {
    Permission.EVENTS_SEND,
    Permission.APPROVALS_REQUEST,
    Permission.RESPONSES_MANAGE,
    Permission.MODES_WRITE,
    Permission.TASKS_WRITE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: _AGENT | {Permission.READ_ALL, Permission.BRIDGE_CONTROL},
    Role.AGENT: frozenset(_AGENT),
    Role.READER: _READ_OWN,
}


class Principal(Contract):
    """Who is calling, as the auth service vouches for it."""

    client_id: str = Field(description="Stable id of the client the key belongs to")
    key_id: str = Field(description="The key's public id part")
    role: Role
    permissions: frozenset[Permission]
    rate_limit_per_minute: int | None = Field(
        default=None, description="Token-bucket size per minute; None = unlimited"
    )
    expires_at: datetime | None = None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions


class VerifyRequest(Contract):
    """RPC ``cctg.auth.rpc.verify``: is this presented API key valid?"""

    api_key: str = Field(repr=False, description="The full presented key (never logged)")
    request_id: str | None = None


class VerifyResponse(Contract):
    valid: bool
    principal: Principal | None = None
    reason: str | None = Field(
        default=None, description="malformed, unknown, wrong_secret, revoked, expired"
    )


class KeyChanged(Contract):
    """Broadcast ``cctg.auth.key.changed``: gateways drop this key id from their caches."""

    key_id: str
    change: str = Field(description="created, revoked, rotated, updated")


# --- key records and key management RPCs -----------------------------------------------------
class KeyRecord(Contract):
    """Value of the ``cctg_keys`` KV under the key id. Holds a digest, never the key."""

    key_id: str = Field(description="The key's public id part (the KV key)")
    digest: str = Field(repr=False, description="HMAC-SHA256 of the key under the server secret")
    client_id: str = Field(description="Stable id of the client the key belongs to")
    role: Role
    label: str = Field(default="", max_length=200, description="What the key is for")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, description="Token-bucket size per minute; None = the role's default"
    )
    created_at: datetime
    expires_at: datetime | None = Field(default=None, description="After this the key is refused")
    revoked_at: datetime | None = None
    last_used_at: datetime | None = Field(
        default=None, description="Updated lazily (at most about once a minute)"
    )
    rotated_to: str | None = Field(default=None, description="Key id of the key replacing it")


class KeyInfo(Contract):
    """What anyone may see about a key: everything but the digest."""

    key_id: str
    client_id: str
    role: Role
    label: str = ""
    rate_limit_per_minute: int | None = None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_to: str | None = None
    active: bool = Field(description="Neither revoked nor expired")

    @classmethod
    def of(cls, record: KeyRecord, now: datetime) -> KeyInfo:
        data = record.model_dump(exclude={"digest"})
        expired = record.expires_at is not None and record.expires_at <= now
        return cls(**data, active=record.revoked_at is None and not expired)


_CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,99}$"


class CreateKeyRequest(Contract):
    """RPC ``cctg.auth.rpc.create_key``: issue a new key (its secret is shown once)."""

    client_id: str = Field(
        pattern=_CLIENT_ID_PATTERN, description="Who the key is for (letters, digits, ._@:-)"
    )
    role: Role = Field(default=Role.AGENT, description="admin, operator, agent or reader")
    label: str = Field(default="", max_length=200, description="What the key is for")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Calls per minute; None = role default"
    )
    expires_in_s: int | None = Field(
        default=None, ge=60, le=10 * 365 * 86400, description="Lifetime in seconds; None = none"
    )
    actor: str | None = Field(default=None, description="Client id of whoever asks (audit)")
    request_id: str | None = None


class CreatedKey(Contract):
    """A newly issued key: ``api_key`` is the only time the full key is ever shown."""

    api_key: str = Field(repr=False, description="The full key; store it now, it is not kept")
    key: KeyInfo


class ListKeysRequest(Contract):
    """RPC ``cctg.auth.rpc.list_keys``."""

    client_id: str | None = Field(default=None, description="Only this client's keys")
    include_inactive: bool = Field(default=False, description="Also revoked and expired keys")


class KeyList(Contract):
    keys: tuple[KeyInfo, ...]


class RevokeKeyRequest(Contract):
    """RPC ``cctg.auth.rpc.revoke_key``: the key stops working on every gateway within 1 s."""

    key_id: str = Field(pattern=r"^[A-Za-z0-9]{12}$", description="The key's id part")
    actor: str | None = None
    request_id: str | None = None


class RotateKeyRequest(Contract):
    """RPC ``cctg.auth.rpc.rotate_key``: a new key for the same client, role and limits.

    The old key keeps working for ``old_key_valid_for_s`` (0 = revoked at once), so a
    client may hold two active keys while it switches.
    """

    key_id: str = Field(pattern=r"^[A-Za-z0-9]{12}$", description="The key being replaced")
    old_key_valid_for_s: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Grace period of the old key"
    )
    actor: str | None = None
    request_id: str | None = None


class RotatedKey(Contract):
    api_key: str = Field(repr=False, description="The new full key; shown once")
    key: KeyInfo = Field(description="The new key")
    old_key: KeyInfo = Field(description="The replaced key, with its new expiry")
