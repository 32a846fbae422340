import httpx

from tests.conftest import LiveServer


async def test_healthz_checks_the_database(client) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_real_server_speaks_http(live_server: LiveServer) -> None:
    from tests.conftest import make_org

    org = await make_org("Live")
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        members = await http.get("/api/v1/organization/members", headers=org.headers)
        assert members.status_code == 200
        assert members.json()["members"][0]["email"] == org.owner_email
        assert members.headers["x-request-id"].startswith("req_")
        denied = await http.get("/api/v1/organization/members", headers={"x-api-key": "ak_wrong"})
        assert denied.status_code == 401
