"""API keys: create (secret shown once), list, enable/disable/rename, delete."""

from __future__ import annotations

from ..kernel.auth import SCOPES, Principal, require_admin
from ..kernel.errors import NotFound, ValidationFailed
from ..kernel.ids import new_id, new_secret
from ..models.core import ApiKey, Organization, User
from ..kernel.plans import enforce_limit
from ..kernel.hashing import hash_token
from ..kernel.transactions import atomic
from .validation import check_name

__all__ = ["create_key", "create_key_record", "list_keys", "update_key", "delete_key"]


def _check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed(
            details={"scopes": [f"unknown scope '{s}'; known scopes: {', '.join(SCOPES)}" for s in unknown]}
        )
    return sorted(set(scopes), key=SCOPES.index)


async def create_key_record(
    org: Organization, *, name: str, scopes: list[str], user: User | None
) -> str:
    """Write a key and return its secret; the only time the secret exists outside a hash."""
    scopes = _check_scopes(scopes)
    name = check_name(name)
    await enforce_limit(org.plan, "api_keys", lambda: ApiKey.filter(organization=org).count())
    raw = new_secret("ak", 43)
    await ApiKey.create(
        id=new_id("api_key"),
        organization=org,
        name=name,
        key_hash=hash_token(raw),
        prefix=raw[:7],
        scopes=scopes,
        created_by=user,
    )
    return raw


async def create_key(principal: Principal, *, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    require_admin(principal)
    async with atomic():
        raw = await create_key_record(principal.organization, name=name, scopes=scopes, user=principal.user)
    key = await ApiKey.get(key_hash=hash_token(raw))
    return key, raw


async def list_keys(principal: Principal) -> list[ApiKey]:
    require_admin(principal)
    # Bounded: plans cap keys far below this; self-hosted organizations rarely come close.
    return await ApiKey.filter(organization_id=principal.org_id).order_by("created_at", "id").limit(1000)


async def _get(principal: Principal, key_id: str) -> ApiKey:
    require_admin(principal)
    key = await ApiKey.get_or_none(id=key_id, organization_id=principal.org_id)
    if key is None:
        raise NotFound("API key not found.")
    return key


async def update_key(
    principal: Principal, key_id: str, *, name: str | None = None, enabled: bool | None = None
) -> ApiKey:
    key = await _get(principal, key_id)
    if name is not None:
        key.name = check_name(name)
    if enabled is not None:
        key.enabled = enabled
    await key.save()
    return key


async def delete_key(principal: Principal, key_id: str) -> None:
    key = await _get(principal, key_id)
    await key.delete()
