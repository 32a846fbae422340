"""Who is calling: API keys and session tokens resolved to a ``Principal``, and the rules
for what a principal may do (scopes, roles). Used by REST, socket.io and MCP alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping

from .errors import AuthenticationRequired, Forbidden
from .models.core import ApiKey, Organization, Session, User
from .security import hash_token

__all__ = [
    "SCOPES",
    "ROLE_SCOPES",
    "Principal",
    "authenticate_token",
    "token_from_headers",
    "require_scope",
    "require_admin",
]

SCOPES: tuple[str, ...] = (
    "organizations:read",
    "members:read",
    "members:write",
    "agents:read",
    "agents:write",
    "conversations:read",
    "conversations:write",
    "push:write",
    "data.databases:read",
    "data.databases:write",
    "data.tables:read",
    "data.tables:write",
    "files:read",
    "files:write",
)

_MEMBER_SCOPES = frozenset(
    {
        "organizations:read",
        "members:read",
        "agents:read",
        "conversations:read",
        "conversations:write",
        "data.databases:read",
        "data.tables:read",
        "files:read",
    }
)

# People act through their role; API keys through the scopes they were given.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": frozenset(SCOPES),
    "admin": frozenset(SCOPES),
    "member": _MEMBER_SCOPES,
}

API_KEY_PREFIX = "ak_"
SESSION_PREFIX = "st_"


@dataclass(frozen=True)
class Principal:
    organization: Organization
    kind: Literal["api_key", "session"]
    scopes: frozenset[str]
    # The person: the session's user, or the user who created the API key (may be gone).
    user: User | None
    role: str | None = None  # sessions only
    api_key_id: str | None = None
    session_id: str | None = None

    @property
    def org_id(self) -> str:
        return str(self.organization.id)

    @property
    def is_admin(self) -> bool:
        """Admins manage members, keys and settings: owner/admin sessions and all-scopes keys."""
        if self.kind == "session":
            return self.role in ("owner", "admin")
        return self.scopes >= ROLE_SCOPES["owner"]

    @property
    def sees_all_conversations(self) -> bool:
        return self.kind == "api_key" or self.is_admin


def token_from_headers(headers: Mapping[str, str] | Any) -> str | None:
    auth = headers.get("authorization") or headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = headers.get("x-api-key") or headers.get("X-Api-Key")
    return key.strip() if key else None


async def authenticate_token(token: str | None) -> Principal:
    """One indexed lookup: the token's hash, joined to what the principal needs."""
    if not token:
        raise AuthenticationRequired()
    digest = hash_token(token)
    if token.startswith(API_KEY_PREFIX):
        key = (
            await ApiKey.filter(key_hash=digest)
            .select_related("organization", "created_by")
            .first()
        )
        if key is None:
            raise AuthenticationRequired()
        if not key.enabled:
            raise Forbidden("This API key is disabled.", code="key_disabled")
        return Principal(
            organization=key.organization,
            kind="api_key",
            scopes=frozenset(key.scopes),
            user=key.created_by,
            api_key_id=key.id,
        )
    session = (
        await Session.filter(token_hash=digest, revoked_at=None)
        .select_related("membership__user", "membership__organization")
        .first()
    )
    if session is None or session.expires_at <= datetime.now(timezone.utc):
        raise AuthenticationRequired("Your session has expired or is invalid. Log in again.")
    membership = session.membership
    return Principal(
        organization=membership.organization,
        kind="session",
        scopes=ROLE_SCOPES.get(membership.role, frozenset()),
        user=membership.user,
        role=membership.role,
        session_id=session.id,
    )


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(
            f"This action requires the '{scope}' permission.",
            details={"required_scope": scope},
        )


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(
            "Only organization owners and admins can do this.",
            details={"required_role": "admin"},
        )
