"""API keys: shown once, hashed, scoped, named, disabled, deleted; isolation."""

from __future__ import annotations

import re

from app.kernel.auth import SCOPES
from app.models.core import ApiKey
from tests.conftest import Orgs, add_member


async def create(client, org, **body):
    response = await client.post("/api/v1/api-keys", json=body, headers=org.headers)
    return response.status_code, await response.get_json()


async def test_create_shows_secret_once_and_records_creator(client, orgs: Orgs) -> None:
    status, body = await create(client, orgs.a, name="n8n", scopes=["agents:read", "conversations:write"])
    assert status == 201
    key = body["api_key"]
    assert re.fullmatch(r"ak_[A-Za-z0-9_-]{40,}", key["key"])
    assert key["name"] == "n8n" and key["enabled"] is True
    assert key["scopes"] == ["agents:read", "conversations:write"]
    assert key["created_by"] == orgs.a.owner_id

    listing = await (await client.get("/api/v1/api-keys", headers=orgs.a.headers)).get_json()
    text = str(listing)
    assert key["key"] not in text and "key_hash" not in text
    listed = {k["id"]: k for k in listing["api_keys"]}[key["id"]]
    assert "key" not in listed and listed["prefix"] == key["key"][:7]
    stored = await ApiKey.get(id=key["id"])
    assert stored.key_hash != key["key"] and key["key"] not in stored.key_hash


async def test_unknown_scope_is_422(client, orgs: Orgs) -> None:
    status, body = await create(client, orgs.a, name="x", scopes=["agents:read", "root"])
    assert status == 422
    assert "scopes" in body["error"]["details"]


async def test_rename_and_disable(client, orgs: Orgs) -> None:
    _, body = await create(client, orgs.a, name="old", scopes=["agents:read"])
    key_id = body["api_key"]["id"]
    response = await client.patch(f"/api/v1/api-keys/{key_id}", json={"name": "new", "enabled": False}, headers=orgs.a.headers)
    assert response.status_code == 200
    updated = (await response.get_json())["api_key"]
    assert updated["name"] == "new" and updated["enabled"] is False
    bad = await client.patch(f"/api/v1/api-keys/{key_id}", json={"enabled": "nope"}, headers=orgs.a.headers)
    assert bad.status_code == 422


async def test_scoped_keys_cannot_manage_keys(client, orgs: Orgs) -> None:
    _, body = await create(client, orgs.a, name="limited", scopes=list(SCOPES[:-1]))
    headers = {"x-api-key": body["api_key"]["key"]}
    response = await client.post("/api/v1/api-keys", json={"name": "y", "scopes": []}, headers=headers)
    assert response.status_code == 403


async def test_admin_session_can_manage_keys_member_cannot(client, orgs: Orgs) -> None:
    _, admin = await add_member(client, orgs.a, "adm@acme.example", role="admin")
    _, member = await add_member(client, orgs.a, "mem@acme.example")
    ok = await client.post(
        "/api/v1/api-keys", json={"name": "by-admin", "scopes": ["agents:read"]},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert ok.status_code == 201
    denied = await client.post(
        "/api/v1/api-keys", json={"name": "by-member", "scopes": ["agents:read"]},
        headers={"Authorization": f"Bearer {member}"},
    )
    assert denied.status_code == 403


async def test_other_organizations_keys_are_404(client, orgs: Orgs) -> None:
    _, body = await create(client, orgs.b, name="b-key", scopes=["agents:read"])
    key_id = body["api_key"]["id"]
    for method, kwargs in (("patch", {"json": {"enabled": False}}), ("delete", {})):
        response = await getattr(client, method)(f"/api/v1/api-keys/{key_id}", headers=orgs.a.headers, **kwargs)
        assert response.status_code == 404
    listing = await (await client.get("/api/v1/api-keys", headers=orgs.a.headers)).get_json()
    assert key_id not in {k["id"] for k in listing["api_keys"]}
    assert (await ApiKey.get(id=key_id)).enabled is True
