"""Roles, permissions, and the auth service's verify RPC."""

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
    change: str = Field(description="revoked, rotated, updated")
