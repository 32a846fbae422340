"""Agents API: shapes as the contract shows them, secrets shown once, isolation, bad input."""

from __future__ import annotations

from app.kernel.config import Settings
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import EventRecorder, Orgs, add_member


async def test_create_list_get_update_delete(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers, webhook_url="https://hooks.example.com/x")
    assert agent["signing_secret"].startswith("whsec_")
    assert agent["status"] == "active" and agent["protocol"] == "webhook"

    listed = await (await client.get("/api/v1/agents", headers=orgs.a.headers)).get_json()
    assert listed == {
        "agents": [
            {
                "id": agent["id"],
                "name": "Support Bot",
                "status": "active",
                "protocol": "webhook",
                "webhook_url": "https://hooks.example.com/x",
                "enabled": True,
            }
        ],
        "meta": {"limit": 500, "offset": 0, "has_more": False},
    }
    detailed = await (await client.get("/api/v1/agents?detailed=true", headers=orgs.a.headers)).get_json()
    assert detailed["agents"][0]["test_mode"] is False
    assert "signing_secret" not in detailed["agents"][0]

    response = await client.patch(
        f"/api/v1/agents/{agent['id']}",
        json={"webhook_url": "https://your-new-webhook.com/handle", "enabled": False},
        headers=orgs.a.headers,
    )
    body = await response.get_json()
    assert response.status_code == 200
    assert body["success"] is True
    assert body["agent"]["webhook_url"] == "https://your-new-webhook.com/handle"
    assert body["agent"]["enabled"] is False and body["agent"]["status"] == "disabled"

    got = await (await client.get(f"/api/v1/agents/{agent['id']}", headers=orgs.a.headers)).get_json()
    assert got["agent"]["enabled"] is False

    info = await (await client.get(f"/api/v1/agents/{agent['id']}/connection-info", headers=orgs.a.headers)).get_json()
    ci = info["connection_info"]
    assert ci["agent_id"] == agent["id"] and ci["protocol"] == "webhook" and ci["conversations"] == []
    assert ci["api_endpoints"]["create_conversation"].endswith(f"/api/v1/agents/{agent['id']}/conversations/create")

    assert (await client.delete(f"/api/v1/agents/{agent['id']}", headers=orgs.a.headers)).status_code == 200
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=orgs.a.headers)).status_code == 404


async def test_other_organization_sees_404(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers)
    for method, path in [
        ("get", f"/api/v1/agents/{agent['id']}"),
        ("patch", f"/api/v1/agents/{agent['id']}"),
        ("delete", f"/api/v1/agents/{agent['id']}"),
        ("post", f"/api/v1/agents/{agent['id']}/rotate-secret"),
        ("get", f"/api/v1/agents/{agent['id']}/connection-info"),
    ]:
        response = await getattr(client, method)(path, headers=orgs.b.headers, json={})
        assert response.status_code == 404, (method, path)
        assert (await response.get_json())["error"]["code"] == "not_found"
    assert (await (await client.get("/api/v1/agents", headers=orgs.b.headers)).get_json())["agents"] == []


async def test_bad_input(client, orgs: Orgs) -> None:
    for body, field in [
        ({"name": "x", "webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"name": "x", "webhook_url": "javascript:alert(1)"}, "webhook_url"),
        ({"name": "x", "protocol": "smtp", "webhook_url": "https://e.com"}, "protocol"),
        ({"name": "", "webhook_url": "https://e.com"}, "name"),
        ({"name": "x"}, "webhook_url"),
    ]:
        response = await client.post("/api/v1/agents", json=body, headers=orgs.a.headers)
        assert response.status_code == 422, body
        error = (await response.get_json())["error"]
        assert error["code"] == "validation_failed" and field in error["details"], error
    bad_json = await client.post("/api/v1/agents", data=b"{nope", headers={**orgs.a.headers, "Content-Type": "application/json"})
    assert bad_json.status_code == 400
    custom = await client.post(
        "/api/v1/agents", json={"name": "Claude", "protocol": "custom", "model": "claude-x"}, headers=orgs.a.headers
    )
    assert custom.status_code == 422 and "provider" in (await custom.get_json())["error"]["details"]
    custom = await client.post(
        "/api/v1/agents", json={"name": "Claude", "protocol": "custom", "provider": "anthropic", "model": "claude-x"},
        headers=orgs.a.headers,
    )
    assert custom.status_code == 201
    assert (await custom.get_json())["agent"]["config"] == {"provider": "anthropic", "model": "claude-x"}


async def test_members_cannot_manage_agents(client, orgs: Orgs) -> None:
    _, token = await add_member(client, orgs.a, "m@acme.example")
    response = await client.post(
        "/api/v1/agents", json={"name": "x", "webhook_url": "https://e.com"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403
    assert (await client.get("/api/v1/agents", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_rotate_secret_keeps_old_one_for_a_day(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers)
    response = await client.post(f"/api/v1/agents/{agent['id']}/rotate-secret", headers=orgs.a.headers)
    body = await response.get_json()
    assert body["signing_secret"].startswith("whsec_") and body["signing_secret"] != agent["signing_secret"]
    assert body["previous_secret_expires_at"].endswith("Z")

    from app.models.chat import Agent
    from app.services.agents import signing_secrets
    from datetime import timedelta

    row = await Agent.get(id=agent["id"])
    assert signing_secrets(row) == (body["signing_secret"], agent["signing_secret"])
    assert signing_secrets(row, row.previous_secret_expires_at + timedelta(seconds=1)) == (body["signing_secret"],)


async def test_private_webhook_urls_are_refused_unless_allowed(settings: Settings) -> None:
    from app.serving.app import create_app
    from tests.conftest import make_org

    # Its own app (not the `app` fixture): one tortoise context per process at a time.
    strict = create_app(settings.with_overrides(allow_private_webhooks=False), auto_migrate=False)
    async with strict.test_app():
        client = strict.test_client()
        org = await make_org("Strict")
        for url in ["http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://169.254.169.254/latest", "http://[::1]/x", "http://localhost/x"]:
            response = await client.post("/api/v1/agents", json={"name": "x", "webhook_url": url}, headers=org.headers)
            assert response.status_code == 422, url
            assert "private" in (await response.get_json())["error"]["details"]["webhook_url"][0]
        # A public address literal passes without any DNS lookup.
        ok = await client.post("/api/v1/agents", json={"name": "x", "webhook_url": "https://93.184.215.14/x"}, headers=org.headers)
        assert ok.status_code == 201


async def test_webhook_urls_are_hidden_from_members(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers, webhook_url="https://hooks.example.com/x?token=s3cret", test_webhook_url="https://hooks.example.com/test")
    _, token = await add_member(client, orgs.a, "m@acme.example")
    _, admin_token = await add_member(client, orgs.a, "a@acme.example", role="admin")
    member = {"Authorization": f"Bearer {token}"}
    listed = await (await client.get("/api/v1/agents?detailed=true", headers=member)).get_json()
    assert listed["agents"][0]["webhook_url"] is None and listed["agents"][0]["test_webhook_url"] is None
    got = await (await client.get(f"/api/v1/agents/{agent['id']}?detailed=true", headers=member)).get_json()
    assert got["agent"]["webhook_url"] is None and got["agent"]["test_webhook_url"] is None
    info = await (await client.get(f"/api/v1/agents/{agent['id']}/connection-info", headers=member)).get_json()
    assert info["connection_info"]["webhook_url"] is None
    assert "s3cret" not in str(listed) + str(got) + str(info)

    response = await client.post("/api/v1/api-keys", json={"name": "ro", "scopes": ["agents:read"]}, headers=orgs.a.headers)
    read_only = {"Authorization": f"Bearer {(await response.get_json())['api_key']['key']}"}
    assert (await (await client.get(f"/api/v1/agents/{agent['id']}", headers=read_only)).get_json())["agent"]["webhook_url"] is None
    for headers in (orgs.a.headers, {"Authorization": f"Bearer {admin_token}"}):
        got = await (await client.get(f"/api/v1/agents/{agent['id']}?detailed=true", headers=headers)).get_json()
        assert got["agent"]["webhook_url"].endswith("token=s3cret") and got["agent"]["test_webhook_url"].endswith("/test")


async def test_typing_callback_needs_an_api_key_with_a_write_scope(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    member_id, token = await add_member(client, orgs.a, "m@acme.example")
    member = {"Authorization": f"Bearer {token}"}
    conv = await make_conversation(client, member, agent["id"])
    body = {"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": False}}
    path = f"/api/agents/{agent['id']}/callback"
    response = await client.post(path, json=body, headers=member)
    assert response.status_code == 403 and (await response.get_json())["error"]["code"] == "insufficient_permissions"

    async def key(scopes: list[str]) -> dict[str, str]:
        r = await client.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=orgs.a.headers)
        return {"Authorization": f"Bearer {(await r.get_json())['api_key']['key']}"}

    assert (await client.post(path, json=body, headers=await key(["conversations:read", "agents:read"]))).status_code == 403
    assert (await client.post(path, json=body, headers=await key(["agents:write"]))).status_code == 200
    assert (await client.post(path, json=body, headers=await key(["conversations:write"]))).status_code == 200
    # Two accepted callbacks, two events to the conversation's rooms; the refused ones, none.
    stopped = {"conversation_id": conv["id"], "agent_id": agent["id"], "typing": False, "label": None, "show_dots": True}
    assert events.of("typing") == [stopped, stopped]
    assert events.rooms_of("typing") == [[f"conv:{conv['id']}", f"user:{member_id}"]] * 2


async def test_a_typing_indicator_is_cleared_by_the_agents_reply(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    rooms = [f"conv:{conv['id']}", f"user:{orgs.a.owner_id}"]
    body = {"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": True, "label": "Thinking...", "timeout": 600000}}
    assert (await client.post(f"/api/agents/{agent['id']}/callback", json=body, headers=orgs.a.headers)).status_code == 200
    started = {"conversation_id": conv["id"], "agent_id": agent["id"], "typing": True, "label": "Thinking...", "show_dots": True}
    assert events.all[-1] == ("typing", rooms, started)

    reply = await client.post(f"/api/v1/conversations/{conv['id']}/originate", json={"content": "done", "role": "assistant"}, headers=orgs.a.headers)
    message = (await reply.get_json())["message"]
    assert events.all[-2:] == [
        ("message.created", rooms, message),
        ("typing", rooms, {**started, "typing": False, "label": None}),
    ]
    # A user's message does not touch the agent's indicator.
    await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "thanks"}, headers=orgs.a.headers)
    assert [e for e, _, _ in events.all] == ["conversation.created", "typing", "message.created", "typing", "message.created"]


async def test_agent_list_is_bounded(client, orgs: Orgs) -> None:
    made = [await make_agent(client, orgs.a.headers, name=f"a{i}") for i in range(3)]
    page = await (await client.get("/api/v1/agents?limit=2", headers=orgs.a.headers)).get_json()
    assert [a["id"] for a in page["agents"]] == [a["id"] for a in made[:2]] and page["meta"]["has_more"] is True
    rest = await (await client.get("/api/v1/agents?limit=2&offset=2", headers=orgs.a.headers)).get_json()
    assert [a["id"] for a in rest["agents"]] == [made[2]["id"]] and rest["meta"]["has_more"] is False
    assert (await client.get("/api/v1/agents?limit=1001", headers=orgs.a.headers)).status_code == 422


async def test_delivery_log_hides_urls_and_payloads_from_read_only_keys(client, orgs: Orgs) -> None:
    """A key that may read agents but not change them sees neither the webhook URL (which
    often carries the automation platform's token) nor, without conversations:read, the text."""
    agent = await make_agent(client, orgs.a.headers, webhook_url="http://127.0.0.1:9/hook?token=SECRET")
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    sent = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "private words"}, headers=orgs.a.headers)
    assert sent.status_code == 201
    created = await client.post("/api/v1/api-keys", json={"name": "ro", "scopes": ["agents:read"]}, headers=orgs.a.headers)
    reader = {"Authorization": f"Bearer {(await created.get_json())['api_key']['key']}"}

    listed = (await (await client.get("/api/v1/deliveries", headers=reader)).get_json())["deliveries"]
    assert len(listed) == 1 and listed[0]["url"] is None
    one = (await (await client.get(f"/api/v1/deliveries/{listed[0]['id']}", headers=reader)).get_json())["delivery"]
    assert one["url"] is None and one["body"] is None

    owner = (await (await client.get(f"/api/v1/deliveries/{listed[0]['id']}", headers=orgs.a.headers)).get_json())["delivery"]
    assert owner["url"].endswith("token=SECRET") and "private words" in owner["body"]
