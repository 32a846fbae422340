"""Stored provider credentials: create, list (never the value), delete."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from ...kernel.errors import ValidationFailed
from ...kernel.timefmt import iso
from ...models.chat import Credential
from ...services import credentials
from .request_io import actor, json_object, settings

bp = Blueprint("credentials", __name__, url_prefix="/api/v1/credentials")


def credential_json(c: Credential) -> dict[str, Any]:
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
async def create() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    unknown = sorted(set(body) - {"name", "provider", "value", "base_url"})
    if unknown:
        raise ValidationFailed(details={key: ["is not a credential field"] for key in unknown})
    credential = await credentials.create_credential(
        principal, name=body.get("name"), provider=body.get("provider"), value=body.get("value"),
        base_url=body.get("base_url"), allow_private=settings().allow_private_webhooks,
    )
    return {"success": True, "credential": credential_json(credential)}, 201


@bp.get("")
async def list_all() -> dict[str, Any]:
    principal = await actor()
    return {"credentials": [credential_json(c) for c in await credentials.list_credentials(principal)]}


@bp.delete("/<credential_id>")
async def delete(credential_id: str) -> dict[str, Any]:
    await credentials.delete_credential(await actor(), credential_id)
    return {"success": True}
