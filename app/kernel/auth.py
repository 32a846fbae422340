"""Who is calling: API keys and session tokens resolved to a ``Principal``, and the rules
for what a principal may do (scopes, roles). Used by REST, socket.io and MCP alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Mapping, TypeVar

from tortoise.models import Model

from .db import fetch_dicts
from .errors import AuthenticationRequired, Forbidden
from ..models.core import ApiKey, Membership, Organization, Session, User
from .hashing import hash_token

M = TypeVar("M", bound=Model)

__all__ = [
    "SCOPES",
    "ROLE_SCOPES",
    "Principal",
    "authenticate_token",
    "token_from_headers",
    "require_scope",
    "require_admin",
    "require_manager",
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
    # Organization webhooks see every event they subscribe to: for owners, admins and keys.
    "webhooks:read",
    "webhooks:write",
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
    kind: Literal["api_key", "session", "action_token"]  # action_token: one interactive answer
    scopes: frozenset[str]
    # The person: the session's user, or the user who created the API key (may be gone).
    user: User | None
    role: str | None = None  # sessions only
    api_key_id: str | None = None
    session_id: str | None = None
    expires_at: datetime | None = None  # sessions only

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
    """A Bearer token, else an ``x-api-key`` (a proxy's Basic credentials do not hide it)."""
    auth = headers.get("authorization") or headers.get("Authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key") or headers.get("X-Api-Key")
    return key.strip() if key else None


def _select(parts: list[tuple[str, type[Model]]]) -> str:
    return ", ".join(
        f'{alias}."{col}" AS "{alias}__{col}"' for alias, model in parts for col in model._meta.db_fields
    )


def _split(row: dict[str, Any], alias: str, model: type[M]) -> M | None:
    values = {col: row[f"{alias}__{col}"] for col in model._meta.db_fields}
    if values.get(model._meta.db_pk_column) is None:
        return None
    return model._init_from_db(**values)


_KEY_PARTS: list[tuple[str, type[Model]]] = [("k", ApiKey), ("o", Organization), ("u", User)]
_SESSION_PARTS: list[tuple[str, type[Model]]] = [("s", Session), ("m", Membership), ("o", Organization), ("u", User)]
_KEY_FROM = (
    "FROM api_keys k JOIN organizations o ON o.id = k.organization_id "
    "LEFT JOIN users u ON u.id = k.created_by_id WHERE k.key_hash = ?"
)
_SESSION_FROM = (
    "FROM sessions s JOIN memberships m ON m.id = s.membership_id "
    "JOIN organizations o ON o.id = m.organization_id JOIN users u ON u.id = m.user_id "
    "WHERE s.token_hash = ? AND s.revoked_at IS NULL"
)
_sql_cache: dict[str, str] = {}


def _sql(kind: str) -> str:
    # Built on first use: the models' column lists are final once tortoise is initialised.
    if kind not in _sql_cache:
        parts, tail = (_KEY_PARTS, _KEY_FROM) if kind == "key" else (_SESSION_PARTS, _SESSION_FROM)
        _sql_cache[kind] = f"SELECT {_select(parts)} {tail}"
    return _sql_cache[kind]


async def _lookup(sql: str, digest: str) -> dict[str, Any] | None:
    # Hand-written (still one indexed lookup): building this join through the ORM cost more
    # than the rest of a typical request.
    rows = await fetch_dicts(sql, [digest])
    return rows[0] if rows else None


# digest -> (the row it was built from, the principal). Every request still reads its row;
# building three models from it (datetime parsing included) cost more than the lookup, and an
# unchanged row gives an equal principal. Any change to key, session, membership, user or
# organization changes the row, so the next request rebuilds. The models are read-only here.
_built: dict[str, tuple[tuple[Any, ...], Principal]] = {}
_BUILT_MAX = 4096


async def authenticate_token(token: str | None) -> Principal:
    """One indexed lookup: the token's hash, joined to what the principal needs."""
    if not token:
        raise AuthenticationRequired()
    if not token.startswith((API_KEY_PREFIX, SESSION_PREFIX)):
        raise AuthenticationRequired()
    digest = hash_token(token)
    is_key = token.startswith(API_KEY_PREFIX)
    row = await _lookup(_sql("key" if is_key else "session"), digest)
    if row is None:
        raise (AuthenticationRequired() if is_key else _expired())
    values = tuple(row.values())
    built = _built.get(digest)
    if built is not None and built[0] == values:
        principal = built[1]
        if principal.expires_at is not None and principal.expires_at <= datetime.now(timezone.utc):
            raise _expired()
        return principal
    principal = _principal(row) if is_key else _session_principal(row)
    if len(_built) >= _BUILT_MAX:
        _built.clear()
    _built[digest] = (values, principal)
    return principal


def _expired() -> AuthenticationRequired:
    return AuthenticationRequired("Your session has expired or is invalid. Log in again.")


def _principal(row: dict[str, Any]) -> Principal:
    key = _split(row, "k", ApiKey)
    if key is None:
        raise AuthenticationRequired()
    if not key.enabled:
        raise Forbidden("This API key is disabled.", code="key_disabled")
    organization = _split(row, "o", Organization)
    assert organization is not None
    return Principal(
        organization=organization,
        kind="api_key",
        scopes=frozenset(key.scopes),
        user=_split(row, "u", User),
        api_key_id=key.id,
    )


def _session_principal(row: dict[str, Any]) -> Principal:
    session = _split(row, "s", Session)
    if session is None or session.expires_at <= datetime.now(timezone.utc):
        raise _expired()
    membership = _split(row, "m", Membership)
    organization = _split(row, "o", Organization)
    assert membership is not None and organization is not None
    return Principal(
        organization=organization,
        kind="session",
        scopes=ROLE_SCOPES.get(membership.role, frozenset()),
        user=_split(row, "u", User),
        role=membership.role,
        session_id=session.id,
        expires_at=session.expires_at,
    )


def require_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(
            f"This action requires the '{scope}' permission.",
            details={"required_scope": scope},
        )


def require_manager(principal: Principal, scope: str) -> None:
    """An API key with ``scope``, or an owner's or admin's session: for what members may not
    see even with the scope (deliveries' payloads, stored credentials)."""
    require_scope(principal, scope)
    if principal.kind == "session":
        require_admin(principal)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden(
            "Only organization owners and admins can do this.",
            details={"required_role": "admin"},
        )
