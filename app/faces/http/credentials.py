"""Stored provider credentials: create, list (never the value), delete."""

from __future__ import annotations

from typing import Any, Literal

import providers
from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...kernel.errors import ValidationFailed
from ...kernel.timefmt import iso
from ...models.chat import Credential
from ...services import credentials
from ..arguments import checked
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, json_object, settings

bp = Blueprint("credentials", __name__, url_prefix="/api/v1/credentials")


# Checked by the credentials service (every face the same); typed here for the schema.
class CredentialCreate(Body):
    name: Any = Field(json_schema_extra={"type": "string"}, examples=["Anthropic production"])
    provider: Any = Field(json_schema_extra={"enum": list(providers.names())})
    value: Any = Field(json_schema_extra={"type": "string"}, description="The provider's API key: stored encrypted.")
    base_url: Any = Field(None, json_schema_extra={"type": ["string", "null"]},
                          description="A compatible server this key is for; the provider's own API by default.")


class CredentialJSON(TypedDict):
    id: str
    name: str
    provider: str
    hint: str | None  # the value's last four characters
    base_url: str | None
    created_by: str | None
    created_at: str | None


class CredentialCreated(TypedDict):
    success: Literal[True]
    credential: CredentialJSON


class CredentialList(TypedDict):
    credentials: list[CredentialJSON]


def credential_json(c: Credential) -> CredentialJSON:
    return {
        "id": c.id,
        "name": c.name,
        "provider": c.provider,
        "hint": f"…{c.hint}" if c.hint else None,
        "base_url": c.base_url,
        "created_by": c.created_by_id,
        "created_at": iso(c.created_at),
    }


@bp.post("")
@documented("Store a provider credential (its value is never shown again)", body=CredentialCreate, status=201,
            scope="agents:write", role="admin")
async def create() -> tuple[CredentialCreated, int]:
    principal = await actor()
    body = await json_object()
    unknown = sorted(set(body) - {"name", "provider", "value", "base_url"})
    if unknown:
        raise ValidationFailed(details={key: ["is not a credential field"] for key in unknown})
    given = checked(CredentialCreate, {key: body.get(key) for key in ("name", "provider", "value", "base_url")})
    credential = await credentials.create_credential(
        principal, name=given.name, provider=given.provider, value=given.value,
        base_url=given.base_url, allow_private=settings().allow_private_webhooks,
    )
    return {"success": True, "credential": credential_json(credential)}, 201


@bp.get("")
@documented("List stored credentials (never their values)", scope="agents:read", role="admin")
async def list_all() -> CredentialList:
    principal = await actor()
    return {"credentials": [credential_json(c) for c in await credentials.list_credentials(principal)]}


@bp.delete("/<credential_id>")
@documented("Delete a credential no agent uses", scope="agents:write", role="admin", errors=(409,))
async def delete(credential_id: str) -> Success:
    await credentials.delete_credential(await actor(), credential_id)
    return {"success": True}
