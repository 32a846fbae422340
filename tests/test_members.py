"""Organization and members, as the contract shows them; invitations; roles; isolation."""

from __future__ import annotations

from tests.conftest import Orgs, add_member, login


async def test_get_organization_shape(client, orgs: Orgs) -> None:
    body = await (await client.get("/api/v1/organization", headers=orgs.a.headers)).get_json()
    assert body["organization"]["id"] == orgs.a.id
    assert body["organization"]["name"] == "Acme"


async def test_invite_accept_and_login(client, orgs: Orgs) -> None:
    response = await client.post(
        "/api/v1/organization/members", json={"email": "New.User@Example.com"}, headers=orgs.a.headers
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert body["member"]["email"] == "New.User@Example.com"
    assert body["member"]["role"] == "member"
    assert body["member"]["status"] == "pending"
    assert body["member"]["id"].startswith("mbr_")  # a pending member: its membership id
    assert body["invite_token"].startswith("inv_")

    # A pending member cannot log in yet.
    early = await client.post("/api/v1/auth/login", json={"email": "new.user@example.com", "password": "x" * 10})
    assert early.status_code == 401

    accepted = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": body["invite_token"], "password": "a good password", "name": "New User"},
    )
    assert accepted.status_code == 200
    session = (await accepted.get_json())["token"]
    me = await (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {session}"})).get_json()
    assert me["user"]["name"] == "New User" and me["user"]["role"] == "member"

    # The token is single-use; the password now works for login.
    reuse = await client.post(
        "/api/v1/auth/accept-invite", json={"token": body["invite_token"], "password": "another password"}
    )
    assert reuse.status_code == 401
    assert await login(client, "NEW.USER@example.com", "a good password")

    members = await (await client.get("/api/v1/organization/members", headers=orgs.a.headers)).get_json()
    by_email = {m["email"]: m for m in members["members"]}
    assert by_email["New.User@Example.com"]["status"] == "active"
    assert by_email["New.User@Example.com"]["id"] == me["user"]["id"]  # once accepted, the user id
    assert by_email[orgs.a.owner_email]["role"] == "owner"


async def test_invite_validation(client, orgs: Orgs) -> None:
    bad = await client.post("/api/v1/organization/members", json={"email": "not-an-email"}, headers=orgs.a.headers)
    assert bad.status_code == 422
    assert "email" in (await bad.get_json())["error"]["details"]
    short = await client.post("/api/v1/organization/members", json={"email": "s@x.io"}, headers=orgs.a.headers)
    token = (await short.get_json())["invite_token"]
    weak = await client.post("/api/v1/auth/accept-invite", json={"token": token, "password": "short"})
    assert weak.status_code == 422
    assert "password" in (await weak.get_json())["error"]["details"]


async def test_inviting_an_existing_member_is_409(client, orgs: Orgs) -> None:
    for email in (orgs.a.owner_email, orgs.a.owner_email.upper()):
        response = await client.post("/api/v1/organization/members", json={"email": email}, headers=orgs.a.headers)
        assert response.status_code == 409
    await client.post("/api/v1/organization/members", json={"email": "p@x.io"}, headers=orgs.a.headers)
    again = await client.post("/api/v1/organization/members", json={"email": "P@X.io"}, headers=orgs.a.headers)
    assert again.status_code == 409


async def test_person_of_another_org_can_join_with_their_password(client, orgs: Orgs) -> None:
    invite = await client.post(
        "/api/v1/organization/members", json={"email": orgs.b.owner_email}, headers=orgs.a.headers
    )
    assert invite.status_code == 201
    token = (await invite.get_json())["invite_token"]
    wrong = await client.post("/api/v1/auth/accept-invite", json={"token": token, "password": "guessing123"})
    assert wrong.status_code == 401
    ok = await client.post("/api/v1/auth/accept-invite", json={"token": token, "password": orgs.b.owner_password})
    assert ok.status_code == 200
    session = (await ok.get_json())["token"]
    me = await (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {session}"})).get_json()
    assert me["organization"]["id"] == orgs.a.id and me["user"]["role"] == "member"


async def test_remove_member_ends_their_sessions(client, orgs: Orgs) -> None:
    user_id, token = await add_member(client, orgs.a, "leaver@acme.example")
    response = await client.delete(f"/api/v1/organization/members/{user_id}", headers=orgs.a.headers)
    assert response.status_code == 200
    assert await response.get_json() == {"success": True}
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    members = await (await client.get("/api/v1/organization/members", headers=orgs.a.headers)).get_json()
    assert user_id not in {m["id"] for m in members["members"]}


async def test_owner_cannot_be_removed(client, orgs: Orgs) -> None:
    response = await client.delete(f"/api/v1/organization/members/{orgs.a.owner_id}", headers=orgs.a.headers)
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "owner_not_removable"


async def test_members_cannot_manage_members(client, orgs: Orgs) -> None:
    _, token = await add_member(client, orgs.a, "plain@acme.example")
    other_id, _ = await add_member(client, orgs.a, "other@acme.example")
    headers = {"Authorization": f"Bearer {token}"}
    remove = await client.delete(f"/api/v1/organization/members/{other_id}", headers=headers)
    assert remove.status_code == 403
    invite = await client.post("/api/v1/organization/members", json={"email": "q@x.io"}, headers=headers)
    assert invite.status_code == 403


async def test_admin_session_manages_members_and_sees_invite_token(client, orgs: Orgs) -> None:
    _, token = await add_member(client, orgs.a, "boss@acme.example", role="admin")
    headers = {"Authorization": f"Bearer {token}"}
    invite = await client.post("/api/v1/organization/members", json={"email": "new@acme.example"}, headers=headers)
    assert invite.status_code == 201
    assert (await invite.get_json())["invite_token"].startswith("inv_")


async def test_other_organizations_members_are_404(client, orgs: Orgs) -> None:
    b_member, _ = await add_member(client, orgs.b, "bee@globex.example")
    for user_id in (b_member, orgs.b.owner_id, "usr_doesnotexist"):
        response = await client.delete(f"/api/v1/organization/members/{user_id}", headers=orgs.a.headers)
        assert response.status_code == 404, user_id
        assert (await response.get_json())["error"]["code"] == "not_found"
    listing = await (await client.get("/api/v1/organization/members", headers=orgs.a.headers)).get_json()
    assert {m["email"] for m in listing["members"]} == {orgs.a.owner_email}
    # B's member is still there.
    b_listing = await (await client.get("/api/v1/organization/members", headers=orgs.b.headers)).get_json()
    assert b_member in {m["id"] for m in b_listing["members"]}
