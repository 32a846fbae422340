from __future__ import annotations

from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...kernel.auth import SCOPES
from ...services import api_keys
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, parse_body
from .shapes import ApiKeyJSON, api_key_json

bp = Blueprint("api_keys", __name__, url_prefix="/api/v1/api-keys")


class CreateKeyBody(Body):
    name: str = Field(examples=["n8n production"])
    scopes: list[str] = Field(
        description="What the key may do: " + ", ".join(SCOPES) + ".", examples=[["conversations:read", "conversations:write"]]
    )


class UpdateKeyBody(Body):
    name: str | None = None
    enabled: bool | None = Field(None, description="A disabled key is refused (403 key_disabled).")


class NewKeyJSON(ApiKeyJSON):
    key: str  # the secret, ak_...: shown once


class KeyCreated(TypedDict):
    api_key: NewKeyJSON


class KeyList(TypedDict):
    api_keys: list[ApiKeyJSON]


class KeyAnswer(TypedDict):
    api_key: ApiKeyJSON


@bp.post("")
@documented("Create an API key (its secret is shown only here)", body=CreateKeyBody, status=201, role="admin",
            errors=(402,))
async def create_key() -> tuple[KeyCreated, int]:
    principal = await actor()
    body = await parse_body(CreateKeyBody)
    key, secret = await api_keys.create_key(principal, name=body.name, scopes=body.scopes)
    return {"api_key": {**api_key_json(key), "key": secret}}, 201


@bp.get("")
@documented("List API keys (never their secrets)", role="admin")
async def list_keys() -> KeyList:
    return {"api_keys": [api_key_json(k) for k in await api_keys.list_keys(await actor())]}


@bp.patch("/<key_id>")
@documented("Rename, disable or enable an API key", body=UpdateKeyBody, role="admin")
async def update_key(key_id: str) -> KeyAnswer:
    principal = await actor()
    body = await parse_body(UpdateKeyBody)
    key = await api_keys.update_key(principal, key_id, name=body.name, enabled=body.enabled)
    return {"api_key": api_key_json(key)}


@bp.delete("/<key_id>")
@documented("Delete an API key", role="admin")
async def delete_key(key_id: str) -> Success:
    await api_keys.delete_key(await actor(), key_id)
    return {"success": True}
