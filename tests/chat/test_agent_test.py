"""``POST /agents/:id/test``: a synthetic, signed ``message.created`` through the outbox to
the agent's webhook (a loopback receiver that checks signatures), and its result."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from app.models.chat import OutboxItem
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import DrainOutbox, Orgs, add_member
from tests.fakes.webhook_receiver import Received, WebhookReceiver


async def webhook_agent(client: Any, orgs: Orgs, receiver: WebhookReceiver, **fields: Any) -> dict[str, Any]:
    agent = await make_agent(client, orgs.a.headers, webhook_url=receiver.url, **fields)
    receiver.secrets.append(agent["signing_secret"])
    return agent


async def run_test(client: Any, agent_id: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    r = await client.post(f"/api/v1/agents/{agent_id}/test", headers=headers)
    return r.status_code, await r.get_json()


async def test_a_signed_test_delivery_and_what_the_receiver_answered(client: Any, orgs: Orgs, receiver: WebhookReceiver,
                                                                     drain_outbox: DrainOutbox) -> None:
    async def slow(_: WebhookReceiver, __: Received) -> web.Response:
        await asyncio.sleep(0.2)  # a receiver that takes its time: the latency reported includes it
        return web.json_response({"ok": True})

    receiver.respond = slow
    agent = await webhook_agent(client, orgs, receiver)
    status, body = await run_test(client, agent["id"], orgs.a.headers)
    assert status == 200, body
    assert body["success"] is True and body["ok"] is True and body["status"] == 200
    assert 200 <= body["latency_ms"] < 5000
    assert body["url"] == receiver.url and "error" not in body

    [test] = receiver.received
    assert test.signed_with == [agent["signing_secret"]]
    assert test.headers["X-Switchboard-Test"] == "true"
    assert test.headers["X-Switchboard-Event"] == "message.created"
    assert test.delivery_id == body["delivery_id"]
    sent = test.json
    assert sent["test"] is True and sent["event"] == "message.created" and sent["agentId"] == agent["id"]
    assert sent["userEmail"] == orgs.a.owner_email and sent["content"]

    # The body is a real message.created body: the same keys as a real message's, plus the mark.
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "real"}, headers=orgs.a.headers)
    await drain_outbox()
    real = receiver.received[1]
    assert "X-Switchboard-Test" not in real.headers and "test" not in real.json
    assert set(sent) == set(real.json) | {"test"}
    assert sent["conversationId"] != conv["id"]  # made up

    # In the delivery log like any delivery, attempted once.
    logged = await client.get(f"/api/v1/deliveries/{body['delivery_id']}", headers=orgs.a.headers)
    delivery = (await logged.get_json())["delivery"]
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1 and delivery["agent_id"] == agent["id"]


async def test_a_failing_receiver_is_reported_and_not_retried(client: Any, orgs: Orgs, receiver: WebhookReceiver,
                                                             drain_outbox: DrainOutbox) -> None:
    receiver.respond = lambda _, __: web.Response(status=500, text="workflow crashed")
    agent = await webhook_agent(client, orgs, receiver)
    status, body = await run_test(client, agent["id"], orgs.a.headers)
    assert status == 200, body
    assert body["ok"] is False and body["status"] == 500
    assert body["error"].startswith("HTTP 500") and body["response_excerpt"] == "workflow crashed"
    [item] = [i for i in await drain_outbox() if i.id == body["delivery_id"]]
    assert (item.status, item.attempts, item.conversation_id) == ("failed", 1, None)  # no retry scheduled
    assert len(receiver.received) == 1


async def test_an_unreachable_webhook_is_reported(client: Any, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers, webhook_url="http://127.0.0.1:9/hook")  # nothing listens there
    status, body = await run_test(client, agent["id"], orgs.a.headers)
    assert status == 200, body
    assert body["ok"] is False and body["status"] is None and body["error"].startswith("connection error")
    assert (await OutboxItem.get(id=body["delivery_id"])).status == "failed"


async def test_a_test_does_not_wait_behind_real_deliveries(client: Any, orgs: Orgs, receiver: WebhookReceiver,
                                                           drain_outbox: DrainOutbox) -> None:
    """A real delivery waiting for its retry keeps its place; the test goes out meanwhile."""
    def first_real_attempt_fails(_: WebhookReceiver, received: Received) -> web.Response:
        if not received.json.get("test") and not any(r.delivery_id == received.delivery_id for r in receiver.received):
            return web.Response(status=503)
        return web.json_response({"ok": True})

    receiver.respond = first_real_attempt_fails
    agent = await webhook_agent(client, orgs, receiver)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "one"}, headers=orgs.a.headers)
    await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "two"}, headers=orgs.a.headers)
    await receiver.wait_for(lambda r: len(r.received) == 1)  # "one" failed once; "two" waits behind it
    status, body = await run_test(client, agent["id"], orgs.a.headers)
    assert status == 200 and body["ok"] is True, body
    assert [r.json.get("test", False) for r in receiver.received] == [False, True]
    def real(r: WebhookReceiver) -> list[str]:
        return [a.json["content"] for a in r.acknowledged if not a.json.get("test")]

    await receiver.wait_for(lambda r: len(real(r)) == 2)  # "one" retried after its backoff, then "two"
    assert real(receiver) == ["one", "two"]


async def test_a_custom_agent_has_no_webhook_to_test(client: Any, orgs: Orgs) -> None:
    created = await client.post("/api/v1/agents", json={"name": "Claude", "protocol": "custom", "provider": "anthropic", "model": "model-1"},
                              headers=orgs.a.headers)
    assert created.status_code == 201, await created.get_data(as_text=True)
    agent = (await created.get_json())["agent"]
    status, body = await run_test(client, agent["id"], orgs.a.headers)
    assert status == 409 and body["error"]["code"] == "no_webhook"
    assert body["error"]["details"] == {"agent_id": agent["id"], "protocol": "custom"}
    assert not await OutboxItem.filter(agent_id=agent["id"]).exists()


async def test_who_may_test(client: Any, orgs: Orgs, receiver: WebhookReceiver) -> None:
    agent = await webhook_agent(client, orgs, receiver)
    status, body = await run_test(client, agent["id"], orgs.b.headers)
    assert status == 404 and body["error"]["code"] == "not_found"
    _, member = await add_member(client, orgs.a, "member@acme.example")
    status, body = await run_test(client, agent["id"], {"Authorization": f"Bearer {member}"})
    assert status == 403 and body["error"]["code"] == "insufficient_permissions"
    created = await client.post("/api/v1/api-keys", json={"name": "reader", "scopes": ["agents:read"]}, headers=orgs.a.headers)
    reader = {"Authorization": f"Bearer {(await created.get_json())['api_key']['key']}"}
    status, body = await run_test(client, agent["id"], reader)
    assert status == 403
    assert receiver.received == [] and not await OutboxItem.filter(agent_id=agent["id"]).exists()
    _, admin = await add_member(client, orgs.a, "admin@acme.example", role="admin")
    status, body = await run_test(client, agent["id"], {"Authorization": f"Bearer {admin}"})
    assert status == 200 and body["ok"] is True
