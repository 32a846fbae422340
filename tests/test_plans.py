"""Plan limits: one mechanism, enforced for members and API keys."""

from __future__ import annotations

from app.kernel.plans import load_plans
from app.services.accounts import set_plan
from tests.conftest import Orgs


def test_seed_limits_are_configuration() -> None:
    plans = load_plans()
    assert plans["self-hosted"].limits == {}
    assert plans["free"].limits["entries"] == 1000
    assert plans["starter"].limits["tables_per_database"] == 25
    assert "agents" not in plans["agency"].limits  # unlimited


async def test_free_plan_limits_members(client, orgs: Orgs) -> None:
    await set_plan(orgs.a.id, "free")
    limit = load_plans()["free"].limits["members"]
    for i in range(limit - 1):  # the owner is the first member
        response = await client.post("/api/v1/organization/members", json={"email": f"m{i}@x.io"}, headers=orgs.a.headers)
        assert response.status_code == 201
    over = await client.post("/api/v1/organization/members", json={"email": "over@x.io"}, headers=orgs.a.headers)
    assert over.status_code == 402
    assert await over.get_json() == {
        "error": {
            "code": "plan_limit_reached",
            "message": f"You have reached the maximum of {limit} members on the Free plan. Upgrade to create more.",
            "details": None,
        }
    }
    # Organization B, on the default self-hosted plan, is unlimited.
    for i in range(limit + 1):
        response = await client.post("/api/v1/organization/members", json={"email": f"b{i}@x.io"}, headers=orgs.b.headers)
        assert response.status_code == 201


async def test_free_plan_limits_api_keys(client, orgs: Orgs) -> None:
    await set_plan(orgs.a.id, "free")
    limit = load_plans()["free"].limits["api_keys"]
    created = 1  # the bootstrap key
    while created < limit:
        response = await client.post("/api/v1/api-keys", json={"name": f"k{created}", "scopes": []}, headers=orgs.a.headers)
        assert response.status_code == 201
        created += 1
    over = await client.post("/api/v1/api-keys", json={"name": "over", "scopes": []}, headers=orgs.a.headers)
    assert over.status_code == 402
    assert (await over.get_json())["error"]["code"] == "plan_limit_reached"
