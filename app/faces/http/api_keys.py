from __future__ import annotations

from typing import Any

from quart import Blueprint

from ...services import api_keys
from .request_io import Body, actor, parse_body
from .shapes import api_key_json

bp = Blueprint("api_keys", __name__, url_prefix="/api/v1/api-keys")


class CreateKeyBody(Body):
    name: str
    scopes: list[str]


class UpdateKeyBody(Body):
    name: str | None = None
    enabled: bool | None = None


@bp.post("")
async def create_key() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(CreateKeyBody)
    key, secret = await api_keys.create_key(principal, name=body.name, scopes=body.scopes)
    return {"api_key": {**api_key_json(key), "key": secret}}, 201


@bp.get("")
async def list_keys() -> dict[str, Any]:
    return {"api_keys": [api_key_json(k) for k in await api_keys.list_keys(await actor())]}


@bp.patch("/<key_id>")
async def update_key(key_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await parse_body(UpdateKeyBody)
    key = await api_keys.update_key(principal, key_id, name=body.name, enabled=body.enabled)
    return {"api_key": api_key_json(key)}


@bp.delete("/<key_id>")
async def delete_key(key_id: str) -> dict[str, Any]:
    await api_keys.delete_key(await actor(), key_id)
    return {"success": True}
