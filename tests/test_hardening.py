"""Hostile input at the edges: guessing passwords, odd JSON, huge numbers, odd headers."""

from __future__ import annotations

import dataclasses

from app.serving.app import create_app
from app.kernel.config import Settings
from app.kernel.errors import AUTH_MESSAGE
from tests.conftest import Orgs, make_org
from tests.test_errors import assert_envelope


async def test_login_attempts_are_rate_limited_per_email(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, login_attempts_per_minute=3), auto_migrate=False)
    async with app.test_app():
        org = await make_org("Acme")
        client = app.test_client()
        wrong = {"email": org.owner_email, "password": "not it"}
        for _ in range(3):
            assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
        blocked = await client.post("/api/v1/auth/login", json=wrong)
        assert blocked.status_code == 429
        assert_envelope(await blocked.get_json(), "rate_limited")
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        # Even the right password waits out the window: a guesser learns nothing from it.
        right = {"email": org.owner_email, "password": org.owner_password}
        assert (await client.post("/api/v1/auth/login", json=right)).status_code == 429
        # Another account from the same address is not locked out by it.
        other = await make_org("Globex")
        ok = await client.post(
            "/api/v1/auth/login", json={"email": other.owner_email, "password": other.owner_password}
        )
        assert ok.status_code == 200


async def test_invite_acceptance_is_rate_limited_per_address(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, auth_requests_per_minute=2), auto_migrate=False)
    async with app.test_app():
        client = app.test_client()
        body = {"token": "guess", "password": "long enough password", "name": "X"}
        codes = [(await client.post("/api/v1/auth/accept-invite", json=body)).status_code for _ in range(3)]
        assert codes[:2] != [429, 429] and codes[2] == 429


async def test_unpaired_surrogate_is_invalid_json(client, orgs: Orgs) -> None:
    response = await client.post(
        "/api/v1/api-keys",
        data=b'{"name": "bad \\ud800 name", "scopes": []}',
        headers={**orgs.a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_envelope(await response.get_json(), "invalid_json")
    # A properly paired surrogate (an emoji) is fine.
    ok = await client.post(
        "/api/v1/api-keys",
        data=b'{"name": "rocket \\ud83d\\ude80", "scopes": ["agents:read"]}',
        headers={**orgs.a.headers, "Content-Type": "application/json"},
    )
    assert ok.status_code == 201, await ok.get_data(as_text=True)
    assert (await ok.get_json())["api_key"]["name"] == "rocket \U0001F680"


async def test_deeply_nested_json_is_invalid_json_not_500(client, orgs: Orgs) -> None:
    response = await client.post(
        "/api/v1/api-keys",
        data=b"[" * 100_000 + b"]" * 100_000,
        headers={**orgs.a.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert_envelope(await response.get_json(), "invalid_json")


async def test_query_integer_beyond_64_bits_is_422(client, orgs: Orgs) -> None:
    response = await client.get(f"/api/v1/organization/members?offset={2**70}", headers=orgs.a.headers)
    assert response.status_code == 422
    body = await response.get_json()
    assert_envelope(body, "validation_failed")
    assert "offset" in body["error"]["details"]


async def test_members_list_is_paginated(client, orgs: Orgs) -> None:
    for n in range(3):
        invited = await client.post(
            "/api/v1/organization/members", json={"email": f"p{n}@acme.example"}, headers=orgs.a.headers
        )
        assert invited.status_code in (200, 201)
    page = await client.get("/api/v1/organization/members?limit=2&offset=1", headers=orgs.a.headers)
    body = await page.get_json()
    assert len(body["members"]) == 2
    assert body["meta"]["total"] == 4 and body["meta"]["limit"] == 2 and body["meta"]["offset"] == 1


async def test_x_api_key_is_used_when_authorization_is_not_bearer(client, orgs: Orgs) -> None:
    response = await client.get(
        "/api/v1/organization",
        headers={"Authorization": "Basic dXNlcjpwYXNz", "x-api-key": orgs.a.api_key},
    )
    assert response.status_code == 200
    assert (await response.get_json())["organization"]["id"] == orgs.a.id


async def test_token_of_unknown_kind_is_the_contract_401(client) -> None:
    response = await client.get("/api/v1/organization", headers={"Authorization": "Bearer something-else"})
    assert response.status_code == 401
    assert (await response.get_json())["error"] == {
        "code": "authentication_required", "message": AUTH_MESSAGE, "details": None,
    }


async def test_api_key_name_longer_than_200_is_422(client, orgs: Orgs) -> None:
    response = await client.post(
        "/api/v1/api-keys", json={"name": "k" * 201, "scopes": ["agents:read"]}, headers=orgs.a.headers
    )
    assert response.status_code == 422
    assert "name" in (await response.get_json())["error"]["details"]


async def test_login_guesses_spread_over_addresses_still_run_out(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, login_attempts_per_minute=2), auto_migrate=False)
    async with app.test_app():
        org = await make_org("Acme")
        client = app.test_client()
        wrong = {"email": org.owner_email, "password": "not it"}
        codes = []
        for n in range(6):  # 2 a minute from each address, 10 per 10 minutes for the account
            for _ in range(2):
                response = await client.post(
                    "/api/v1/auth/login", json=wrong, scope_base={"client": (f"192.0.2.{n}", 40000)}
                )
                codes.append(response.status_code)
        assert codes[:10] == [401] * 10
        assert codes[10:] == [429, 429]
