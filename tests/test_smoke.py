from tests.conftest import Orgs


async def test_members_listing_with_bootstrap_key(client, orgs: Orgs) -> None:
    response = await client.get("/api/v1/organization/members", headers=orgs.a.headers)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["members"][0]["email"] == orgs.a.owner_email
    assert body["members"][0]["role"] == "owner"
