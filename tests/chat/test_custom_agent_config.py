"""Custom agents' settings and the stored provider credentials they use."""

from __future__ import annotations

from typing import Any

import pytest

from app.kernel import crypto
from app.models.chat import Agent, Credential
from tests.conftest import Orgs, add_member

CLAUDE = {"name": "Claude", "protocol": "custom", "provider": "anthropic", "model": "claude-sonnet-4-5"}


async def create(client: Any, orgs: Orgs, **body: Any) -> Any:
    return await client.post("/api/v1/agents", json={**CLAUDE, **body}, headers=orgs.a.headers)


async def credential(client: Any, orgs: Orgs, provider: str = "anthropic", value: str = "sk-ant-api03-secretvalue1234",
                     base_url: str | None = None) -> dict[str, Any]:
    body = {"name": f"{provider} key", "provider": provider, "value": value, **({"base_url": base_url} if base_url else {})}
    r = await client.post("/api/v1/credentials", json=body, headers=orgs.a.headers)
    assert r.status_code == 201, await r.get_data(as_text=True)
    return (await r.get_json())["credential"]  # type: ignore[no-any-return]


async def test_credentials_are_stored_sealed_and_never_shown(client: Any, orgs: Orgs) -> None:
    made = await credential(client, orgs)
    assert made["hint"] == "…1234" and made["provider"] == "anthropic" and "value" not in made
    stored = await Credential.get(id=made["id"])
    assert "secretvalue" not in stored.value and crypto.is_encrypted(stored.value)
    listed = await (await client.get("/api/v1/credentials", headers=orgs.a.headers)).get_json()
    assert [c["id"] for c in listed["credentials"]] == [made["id"]]
    assert "secretvalue" not in str(listed)
    assert (await (await client.get("/api/v1/credentials", headers=orgs.b.headers)).get_json())["credentials"] == []
    assert (await client.delete(f"/api/v1/credentials/{made['id']}", headers=orgs.b.headers)).status_code == 404
    _, member = await add_member(client, orgs.a, "m@acme.example")
    assert (await client.get("/api/v1/credentials", headers={"Authorization": f"Bearer {member}"})).status_code == 403
    assert (await client.delete(f"/api/v1/credentials/{made['id']}", headers=orgs.a.headers)).status_code == 200
    assert await Credential.all().count() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "k", "provider": "mistral", "value": "abc"}, "provider"),
        ({"name": "", "provider": "openai", "value": "abc"}, "name"),
        ({"name": "k", "provider": "openai", "value": ""}, "value"),
        ({"name": "k", "provider": "openai", "value": "two words"}, "value"),
        ({"name": "k", "provider": "openai", "value": 5}, "value"),
        ({"name": "k", "provider": "openai", "value": "abc", "scope": "all"}, "scope"),
        ({"name": "k", "provider": "openai", "value": "abc", "base_url": "ftp://relay.example"}, "base_url"),
        ({"name": "k", "provider": "openai", "value": "abc", "base_url": 7}, "base_url"),
    ],
)
async def test_bad_credentials_are_422(client: Any, orgs: Orgs, body: dict[str, Any], field: str) -> None:
    r = await client.post("/api/v1/credentials", json=body, headers=orgs.a.headers)
    assert r.status_code == 422 and field in (await r.get_json())["error"]["details"]


async def test_a_custom_agent_with_every_setting(client: Any, orgs: Orgs) -> None:
    key = await credential(client, orgs, base_url="https://llm.internal.example/v1")
    r = await create(
        client, orgs, system_prompt="You are helpful.", max_tokens=1024, credential_id=key["id"],
        base_url="https://llm.internal.example/v1",
        mcp_servers=[{"url": "https://tools.example/mcp", "headers": {"Authorization": "Bearer tool-token-1"},
                      "require_approval": ["delete_record"]}],
    )
    assert r.status_code == 201, await r.get_data(as_text=True)
    config = (await r.get_json())["agent"]["config"]
    assert config["max_tokens"] == 1024 and config["credential_id"] == key["id"]
    assert config["mcp_servers"] == [{"url": "https://tools.example/mcp", "headers": {"Authorization": "********"},
                                      "require_approval": ["delete_record"]}]
    agent_id = (await r.get_json())["agent"]["id"]
    stored = await Agent.get(id=agent_id)
    assert "tool-token-1" not in str(stored.config)
    detailed = await (await client.get(f"/api/v1/agents/{agent_id}?detailed=true", headers=orgs.a.headers)).get_json()
    assert "tool-token-1" not in str(detailed) and detailed["agent"]["config"]["system_prompt"] == "You are helpful."
    # Sending the masked value back keeps the stored header; null removes a setting.
    r = await client.patch(f"/api/v1/agents/{agent_id}", json={"mcp_servers": detailed["agent"]["config"]["mcp_servers"],
                                                               "max_tokens": None}, headers=orgs.a.headers)
    assert r.status_code == 200, await r.get_data(as_text=True)
    from app.services.agent_config import mcp_headers

    stored = await Agent.get(id=agent_id)
    assert mcp_headers(agent_id, stored.config["mcp_servers"][0]) == {"Authorization": "Bearer tool-token-1"}
    assert "max_tokens" not in stored.config
    # A credential in use cannot be deleted.
    r = await client.delete(f"/api/v1/credentials/{key['id']}", headers=orgs.a.headers)
    assert r.status_code == 409 and (await r.get_json())["error"]["details"]["agents"] == [agent_id]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"provider": "mistral"}, "provider"),
        ({"model": ""}, "model"),
        ({"provider": "openai", "temperature": 2.5}, "temperature"),
        ({"provider": "openai", "temperature": "hot"}, "temperature"),
        ({"temperature": 0.5}, "temperature"),  # anthropic takes none
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"system_prompt": 42}, "system_prompt"),
        ({"mcp_servers": "https://tools.example"}, "mcp_servers"),
        ({"mcp_servers": [{"url": "ftp://tools.example"}]}, "mcp_servers[0].url"),
        ({"mcp_servers": [{"url": "https://tools.example", "token": "x"}]}, "mcp_servers[0].token"),
        ({"mcp_servers": [{"url": "https://tools.example", "require_approval": "yes"}]}, "mcp_servers[0].require_approval"),
        ({"mcp_servers": [{"url": "https://tools.example", "headers": {"X-Key": "a\r\nb"}}]}, "mcp_servers[0].headers.X-Key"),
        ({"credential_id": "cred_nope"}, "credential_id"),
        ({"base_url": "file:///etc/passwd"}, "base_url"),
        ({"base_url": "https://llm.example/v1"}, "base_url"),  # the gateway's keys go to the provider only
        ({"top_p": 0.9}, "top_p"),
    ],
)
async def test_bad_settings_are_422_naming_the_field(client: Any, orgs: Orgs, body: dict[str, Any], field: str) -> None:
    r = await create(client, orgs, **body)
    assert r.status_code == 422, await r.get_data(as_text=True)
    assert field in (await r.get_json())["error"]["details"]
    assert await Agent.all().count() == 0


async def test_a_credential_must_match_the_provider_and_the_organization(client: Any, orgs: Orgs) -> None:
    openai_key = await credential(client, orgs, provider="openai", value="sk-proj-abcdefghijklmnop")
    r = await create(client, orgs, credential_id=openai_key["id"])
    assert r.status_code == 422 and "credential_id" in (await r.get_json())["error"]["details"]
    r = await client.post("/api/v1/agents", json={**CLAUDE, "credential_id": openai_key["id"]}, headers=orgs.b.headers)
    assert r.status_code == 422
    ok = await create(client, orgs, provider="openai", model="gpt-4.1", credential_id=openai_key["id"], temperature=0.7)
    assert ok.status_code == 201 and (await ok.get_json())["agent"]["config"]["temperature"] == 0.7
    # Switching the provider re-checks the credential.
    agent_id = (await ok.get_json())["agent"]["id"]
    r = await client.patch(f"/api/v1/agents/{agent_id}", json={"provider": "anthropic"}, headers=orgs.a.headers)
    assert r.status_code == 422 and "credential_id" in (await r.get_json())["error"]["details"]


async def test_the_key_an_agent_uses(client: Any, orgs: Orgs, settings: Any) -> None:
    from app.services import credentials

    key = await credential(client, orgs, value="sk-ant-stored-key-0001")
    relay = await credential(client, orgs, value="sk-ant-relay-key-0002", base_url="https://relay.example/v1")
    env = settings.with_overrides(provider_keys={"anthropic": "sk-ant-from-env"})
    assert await credentials.api_key(orgs.a.id, key["id"], "anthropic", env) == "sk-ant-stored-key-0001"
    assert await credentials.api_key(orgs.a.id, None, "anthropic", env) == "sk-ant-from-env"
    assert await credentials.api_key(orgs.a.id, None, "openai", env) is None
    assert await credentials.api_key(orgs.b.id, key["id"], "anthropic", env) is None  # not theirs
    # A key goes only where it was made for: never the gateway's, nor another server's, to a base_url.
    assert await credentials.api_key(orgs.a.id, relay["id"], "anthropic", env, "https://relay.example/v1") == "sk-ant-relay-key-0002"
    assert await credentials.api_key(orgs.a.id, relay["id"], "anthropic", env, "https://attacker.example/v1") is None
    assert await credentials.api_key(orgs.a.id, key["id"], "anthropic", env, "https://attacker.example/v1") is None
    assert await credentials.api_key(orgs.a.id, None, "anthropic", env, "https://attacker.example/v1") is None


async def test_a_base_url_needs_a_credential_made_for_it(client: Any, orgs: Orgs) -> None:
    plain = await credential(client, orgs)
    relay = await credential(client, orgs, value="sk-ant-relay-key-0003", base_url="https://relay.example/v1")
    assert relay["base_url"] == "https://relay.example/v1"
    r = await create(client, orgs, credential_id=plain["id"], base_url="https://attacker.example/v1")
    assert r.status_code == 422 and "credential_id" in (await r.get_json())["error"]["details"]
    r = await create(client, orgs, credential_id=relay["id"], base_url="https://attacker.example/v1")
    assert r.status_code == 422 and "credential_id" in (await r.get_json())["error"]["details"]
    ok = await create(client, orgs, credential_id=relay["id"], base_url="https://relay.example/v1")
    assert ok.status_code == 201
    agent_id = (await ok.get_json())["agent"]["id"]
    r = await client.patch(f"/api/v1/agents/{agent_id}", json={"base_url": "https://elsewhere.example/v1"}, headers=orgs.a.headers)
    assert r.status_code == 422
    r = await client.patch(f"/api/v1/agents/{agent_id}", json={"base_url": None, "credential_id": plain["id"]}, headers=orgs.a.headers)
    assert r.status_code == 200


async def test_readers_see_no_urls_and_no_mask_is_stored(client: Any, orgs: Orgs) -> None:
    relay = await credential(client, orgs, value="sk-ant-relay-key-0004", base_url="https://relay.example/v1")
    r = await create(client, orgs, credential_id=relay["id"], base_url="https://relay.example/v1",
                     mcp_servers=[{"url": "https://tools.example/mcp/SECRET-PATH-TOKEN"}])
    agent_id = (await r.get_json())["agent"]["id"]
    _, member = await add_member(client, orgs.a, "reader@acme.example")
    seen = await (await client.get(f"/api/v1/agents/{agent_id}?detailed=true", headers={"Authorization": f"Bearer {member}"})).get_json()
    assert "SECRET-PATH-TOKEN" not in str(seen) and seen["agent"]["config"]["base_url"] is None
    r = await client.patch(f"/api/v1/agents/{agent_id}", json={"mcp_servers": [{"url": "https://tools.example/mcp/SECRET-PATH-TOKEN",
                                                                                "headers": {"X-New": "********"}}]}, headers=orgs.a.headers)
    assert r.status_code == 422 and "mcp_servers[0].headers.X-New" in (await r.get_json())["error"]["details"]


def test_provider_keys_come_from_the_environment() -> None:
    from app.kernel.config import load_settings

    loaded = load_settings({"ANTHROPIC_API_KEY": "sk-a", "XAI_API_KEY": " ", "OPENROUTER_API_KEY": "sk-or"})
    assert loaded.provider_keys == {"anthropic": "sk-a", "openrouter": "sk-or"}
    assert "sk-a" not in repr(loaded)
