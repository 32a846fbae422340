"""API keys and session tokens: every way authentication can fail, scopes and roles."""

from __future__ import annotations

from datetime import timedelta

from app.kernel.errors import AUTH_MESSAGE
from app.models.core import ApiKey, Session
from app.kernel.timefmt import utcnow
from tests.conftest import Orgs, add_member, login


async def test_key_accepted_as_bearer_and_as_x_api_key(client, orgs: Orgs) -> None:
    bearer = await client.get("/api/v1/organization", headers=orgs.a.headers)
    header = await client.get("/api/v1/organization", headers={"x-api-key": orgs.a.api_key})
    assert bearer.status_code == header.status_code == 200
    assert (await bearer.get_json())["organization"] == (await header.get_json())["organization"]
    assert (await bearer.get_json())["organization"]["id"] == orgs.a.id


async def test_unknown_key_and_malformed_header_are_401(client, orgs: Orgs) -> None:
    for headers in (
        {"Authorization": "Bearer ak_" + "x" * 43},
        {"Authorization": orgs.a.api_key},  # no scheme
        {"Authorization": "Basic abc"},
        {"x-api-key": ""},
    ):
        response = await client.get("/api/v1/organization", headers=headers)
        assert response.status_code == 401, headers
        assert (await response.get_json())["error"] == {
            "code": "authentication_required", "message": AUTH_MESSAGE, "details": None,
        }


async def test_disabled_key_is_403_and_reenabled_works_at_once(client, orgs: Orgs) -> None:
    created = await client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["organizations:read"]}, headers=orgs.a.headers
    )
    key = (await created.get_json())["api_key"]
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/api/v1/organization", headers=headers)).status_code == 200

    await client.patch(f"/api/v1/api-keys/{key['id']}", json={"enabled": False}, headers=orgs.a.headers)
    response = await client.get("/api/v1/organization", headers=headers)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "key_disabled"

    await client.patch(f"/api/v1/api-keys/{key['id']}", json={"enabled": True}, headers=orgs.a.headers)
    assert (await client.get("/api/v1/organization", headers=headers)).status_code == 200

    await client.delete(f"/api/v1/api-keys/{key['id']}", headers=orgs.a.headers)
    assert (await client.get("/api/v1/organization", headers=headers)).status_code == 401


async def test_missing_scope_is_403_naming_the_scope(client, orgs: Orgs) -> None:
    created = await client.post(
        "/api/v1/api-keys", json={"name": "reader", "scopes": ["organizations:read"]}, headers=orgs.a.headers
    )
    headers = {"x-api-key": (await created.get_json())["api_key"]["key"]}
    response = await client.get("/api/v1/organization/members", headers=headers)
    assert response.status_code == 403
    body = await response.get_json()
    assert body["error"]["code"] == "insufficient_permissions"
    assert body["error"]["details"] == {"required_scope": "members:read"}
    invite = await client.post("/api/v1/organization/members", json={"email": "n@x.io"}, headers=headers)
    assert (await invite.get_json())["error"]["details"] == {"required_scope": "members:write"}


async def test_login_me_logout(client, orgs: Orgs) -> None:
    token = await login(client, orgs.a.owner_email.upper(), orgs.a.owner_password)
    assert token.startswith("st_")
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    body = await me.get_json()
    assert body["user"]["email"] == orgs.a.owner_email
    assert body["user"]["role"] == "owner"
    assert body["organization"]["id"] == orgs.a.id
    assert body["auth"]["kind"] == "session"

    out = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 200
    again = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


async def test_wrong_credentials_give_no_hint(client, orgs: Orgs) -> None:
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"email": orgs.a.owner_email, "password": "not the password"}
    )
    unknown_email = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@nowhere.io", "password": orgs.a.owner_password}
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert await wrong_password.get_json() == await unknown_email.get_json()
    assert (await wrong_password.get_json())["error"]["code"] == "authentication_required"


async def test_session_tokens_and_keys_are_stored_hashed(client, orgs: Orgs) -> None:
    token = await login(client, orgs.a.owner_email, orgs.a.owner_password)
    stored = [s.token_hash for s in await Session.all()] + [k.key_hash for k in await ApiKey.all()]
    assert token not in stored and orgs.a.api_key not in stored
    assert all(len(h) == 64 for h in stored)


async def test_expired_session_is_401(client, orgs: Orgs) -> None:
    token = await login(client, orgs.a.owner_email, orgs.a.owner_password)
    await Session.all().update(expires_at=utcnow() - timedelta(seconds=1))
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_member_session_has_member_powers_only(client, orgs: Orgs) -> None:
    _, token = await add_member(client, orgs.a, "m@acme.example")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/organization/members", headers=headers)).status_code == 200
    invite = await client.post("/api/v1/organization/members", json={"email": "z@x.io"}, headers=headers)
    assert invite.status_code == 403
    keys = await client.get("/api/v1/api-keys", headers=headers)
    assert keys.status_code == 403
    assert (await keys.get_json())["error"]["details"] == {"required_role": "admin"}


async def test_one_indexed_lookup_authenticates_a_request(client, orgs: Orgs, query_log) -> None:
    from app import outbox

    token = await login(client, orgs.a.owner_email, orgs.a.owner_password)
    for headers in (orgs.a.headers, {"Authorization": f"Bearer {token}"}):
        with query_log() as log:
            outbox.wake()  # the worker's own queries run meanwhile; they are not the request's
            response = await client.get("/api/v1/organization", headers=headers)
        assert response.status_code == 200
        assert len(log.queries) == 1, log.queries
        assert "_hash" in log.queries[0]
