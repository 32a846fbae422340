"""Stored LLM provider credentials for custom agents.

A value is encrypted with the gateway's secret key (bound to its credential's id), shown
never again (``hint`` keeps its last four characters), and used by the agent runner through
``api_key``. An agent naming no credential falls back to the gateway's environment default
for its provider (``ANTHROPIC_API_KEY`` ...).
"""

from __future__ import annotations

from typing import Any

import providers

from ..kernel import crypto
from ..kernel.auth import Principal, require_manager
from ..kernel.config import Settings
from ..kernel.errors import Conflict, NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..models.chat import Agent, Credential
from .validation import check_outbound_url

__all__ = ["create_credential", "list_credentials", "delete_credential", "api_key", "find_credential", "sealed_owner"]

MAX_VALUE = 4096


def sealed_owner(credential_id: str) -> str:
    return f"credential:{credential_id}"


def _check(name: Any, provider: Any, value: Any) -> tuple[str, str, str]:
    problems: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        problems["name"] = ["must be 1 to 200 characters"]
    if not isinstance(provider, str) or provider not in providers.PROVIDERS:
        problems["provider"] = [f"must be one of {', '.join(providers.names())}"]
    if not isinstance(value, str) or not value.strip():
        problems["value"] = ["is required: the provider's API key"]
    elif len(value.strip()) > MAX_VALUE or any(c.isspace() for c in value.strip()):
        problems["value"] = [f"must be one token of at most {MAX_VALUE} characters, without spaces"]
    if problems:
        raise ValidationFailed(details=problems)
    return str(name).strip(), str(provider), str(value).strip()


async def create_credential(
    principal: Principal, *, name: Any, provider: Any, value: Any, base_url: Any = None, allow_private: bool = False
) -> Credential:
    """``base_url``: a self-hosted or compatible server this key is for (agents using the key
    must name the same one); without it the key goes only to the provider's own API."""
    require_manager(principal, "agents:write")
    name, provider, value = _check(name, provider, value)
    if base_url is not None and not isinstance(base_url, str):
        raise ValidationFailed(details={"base_url": ["must be an http(s) URL"]})
    base_url = await check_outbound_url("base_url", base_url, allow_private=allow_private)
    credential_id = new_id("credential")
    return await Credential.create(
        base_url=base_url,
        id=credential_id,
        organization_id=principal.org_id,
        name=name,
        provider=provider,
        value=crypto.encrypt(value, sealed_owner(credential_id)),
        hint=value[-4:] if len(value) >= 12 else "",  # a short value keeps all of itself
        created_by_id=principal.user.id if principal.user is not None else None,
    )


async def list_credentials(principal: Principal) -> list[Credential]:
    require_manager(principal, "agents:read")
    return list(await Credential.filter(organization_id=principal.org_id).order_by("created_at", "id"))


async def find_credential(organization_id: str, credential_id: str) -> Credential | None:
    return await Credential.get_or_none(id=credential_id, organization_id=organization_id)


async def delete_credential(principal: Principal, credential_id: str) -> None:
    """409 while an agent uses it: the agent would lose its key without anyone noticing."""
    require_manager(principal, "agents:write")
    credential = await find_credential(principal.org_id, credential_id)
    if credential is None:
        raise NotFound("Credential not found.")
    users = [
        a.id for a in await Agent.filter(organization_id=principal.org_id) if (a.config or {}).get("credential_id") == credential.id
    ]
    if users:
        raise Conflict("Agents use this credential; point them at another one first.", code="credential_in_use",
                       details={"agents": users})
    await credential.delete()


async def api_key(
    organization_id: str, credential_id: str | None, provider: str, settings: Settings, base_url: str | None = None
) -> str | None:
    """The key an agent calls ``base_url`` (``None``: the provider's own API) with: its
    credential's, if made for that server, else, for the provider's own API only, the
    gateway's default; ``None`` when there is none (or it no longer decrypts)."""
    if credential_id:
        credential = await find_credential(organization_id, credential_id)
        if credential is None or credential.provider != provider or (credential.base_url or None) != (base_url or None):
            return None
        try:
            return crypto.decrypt(credential.value, sealed_owner(credential.id))
        except crypto.CryptoError:
            return None
    return settings.provider_keys.get(provider) if not base_url else None
