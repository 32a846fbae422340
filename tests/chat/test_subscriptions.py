"""Event subscriptions (organization webhooks) end to end: management and its rules, every
event's body as documented, signatures, fan-out only of what was asked for, ordering per
subject, retries, the delivery log and replay, and the 24-hour disable."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web

from app.kernel.timefmt import iso, utcnow
from app.models.chat import OutboxHold, OutboxItem
from app.models.core import EventSubscription
from app.services import subscriptions
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import DrainOutbox, LiveServer, Orgs, add_member, login, wait_for
from tests.fakes.webhook_receiver import Received, WebhookReceiver

EVENT_KEYS = {"event", "id", "created_at", "organization_id", "data"}


async def subscribe(client: Any, org: Any, receiver: WebhookReceiver, events: list[str], **extra: Any) -> dict[str, Any]:
    """Create a subscription (httpx or the Quart test client) and trust its secret."""
    r = await client.post("/api/v1/webhooks", json={"url": receiver.url, "events": events, **extra}, headers=org.headers)
    body = r.json() if isinstance(r, httpx.Response) else await r.get_json()
    assert r.status_code == 201, body
    receiver.secrets.append(body["webhook"]["secret"])
    return body["webhook"]  # type: ignore[no-any-return]


def events_of(receiver: WebhookReceiver, name: str | None = None) -> list[dict[str, Any]]:
    return [r.json for r in receiver.received if name is None or r.headers["X-Switchboard-Event"] == name]


async def subscription_items(subscription_id: str) -> list[OutboxItem]:
    return list(await OutboxItem.filter(secret_ref=subscriptions.outbox_key(subscription_id)).order_by("created_at", "ordering_seq"))


# ---------------------------------------------------------------- managing


async def test_crud_the_secret_once_and_rotation(client: Any, orgs: Orgs) -> None:
    a = orgs.a.headers
    r = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/events", "events": ["message.created", "entry.created", "message.created"],
              "description": "CRM sync"},
        headers=a,
    )
    assert r.status_code == 201, await r.get_data(as_text=True)
    created = (await r.get_json())["webhook"]
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and created["id"].startswith("whk_")
    assert created["events"] == ["message.created", "entry.created"]  # once each, in order
    assert (created["url"], created["description"], created["enabled"], created["status"]) == (
        "http://127.0.0.1:9/events", "CRM sync", True, "active")
    assert created["failing_since"] is None and created["disabled_reason"] is None
    stored = await EventSubscription.get(id=created["id"])
    assert secret not in stored.signing_secret  # sealed at rest

    listed = await client.get("/api/v1/webhooks", headers=a)
    one = await client.get(f"/api/v1/webhooks/{created['id']}", headers=a)
    for answer in (listed, one):
        text = await answer.get_data(as_text=True)
        assert answer.status_code == 200 and secret not in text and '"secret"' not in text
    assert (await listed.get_json())["webhooks"] == [created]
    assert (await one.get_json())["webhook"] == created

    changed = await client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"events": ["*"], "description": None, "url": "https://example.com/in"},
        headers=a,
    )
    assert changed.status_code == 200, await changed.get_data(as_text=True)
    webhook = (await changed.get_json())["webhook"]
    assert (webhook["events"], webhook["description"], webhook["url"]) == (["*"], "", "https://example.com/in")

    rotated = await client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=a)
    body = await rotated.get_json()
    assert rotated.status_code == 200 and body["secret"].startswith("whsec_") and body["secret"] != secret
    assert body["previous_secret_expires_at"] > iso(utcnow() + timedelta(hours=23))  # type: ignore[operator]
    assert body["secret"] not in await (await client.get(f"/api/v1/webhooks/{created['id']}", headers=a)).get_data(as_text=True)

    deleted = await client.delete(f"/api/v1/webhooks/{created['id']}", headers=a)
    assert deleted.status_code == 200 and (await deleted.get_json()) == {"success": True}
    assert (await client.get(f"/api/v1/webhooks/{created['id']}", headers=a)).status_code == 404


async def test_bad_input_is_a_clear_422(client: Any, orgs: Orgs) -> None:
    a = orgs.a.headers

    async def create(body: Any) -> tuple[int, dict[str, Any]]:
        r = await client.post("/api/v1/webhooks", json=body, headers=a)
        return r.status_code, await r.get_json()

    status, body = await create({"url": "http://127.0.0.1:9/x", "events": ["message.created", "message.deleted"]})
    assert status == 422 and body["error"]["code"] == "validation_failed"
    [problem] = body["error"]["details"]["events"]
    assert "'message.deleted'" in problem and all(name in problem for name in subscriptions.EVENTS)
    for bad in ({"url": "http://127.0.0.1:9/x", "events": []}, {"url": "http://127.0.0.1:9/x", "events": "message.created"},
                {"url": "http://127.0.0.1:9/x", "events": [1]}, {"events": ["message.created"]}):
        status, body = await create(bad)
        assert status == 422 and body["error"]["code"] == "validation_failed", (bad, body)
    status, body = await create({"url": "ftp://example.com/x", "events": ["message.created"]})
    assert status == 422 and "url" in body["error"]["details"]
    status, body = await create({"url": "http://127.0.0.1:9/x", "events": ["*"], "description": "x" * 501})
    assert status == 422 and "description" in body["error"]["details"]
    r = await client.post("/api/v1/webhooks", data=b"{nope", headers={**a, "Content-Type": "application/json"})
    assert r.status_code == 400 and (await r.get_json())["error"]["code"] == "invalid_json"
    assert await EventSubscription.all().count() == 0


async def test_who_may_manage_and_other_organizations(client: Any, orgs: Orgs, receiver: WebhookReceiver) -> None:
    hook = await subscribe(client, orgs.a, receiver, ["message.created"])
    _, member = await add_member(client, orgs.a, "member@acme.example")
    as_member = {"Authorization": f"Bearer {member}"}
    assert (await client.get("/api/v1/webhooks", headers=as_member)).status_code == 403
    r = await client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=as_member)
    assert r.status_code == 403 and (await r.get_json())["error"]["code"] == "insufficient_permissions"
    admin = await login(client, orgs.a.owner_email, orgs.a.owner_password)
    assert (await client.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {admin}"})).status_code == 200

    async def key(scopes: list[str]) -> dict[str, str]:
        r = await client.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=orgs.a.headers)
        return {"Authorization": f"Bearer {(await r.get_json())['api_key']['key']}"}

    reader = await key(["webhooks:read"])
    assert (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=reader)).status_code == 200
    assert (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=reader)).status_code == 200
    assert (await client.patch(f"/api/v1/webhooks/{hook['id']}", json={"enabled": False}, headers=reader)).status_code == 403
    agents_only = await key(["agents:read", "agents:write", "conversations:read"])
    assert (await client.get("/api/v1/webhooks", headers=agents_only)).status_code == 403
    # Its deliveries are the subscription managers' business, in the delivery log too.
    ping = await (await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=orgs.a.headers)).get_json()
    ping_id = ping["delivery"]["id"]
    assert (await (await client.get("/api/v1/deliveries", headers=agents_only)).get_json())["deliveries"] == []
    assert (await client.get(f"/api/v1/deliveries/{ping_id}", headers=agents_only)).status_code == 403
    assert (await client.post(f"/api/v1/deliveries/{ping_id}/retry", headers=agents_only)).status_code == 403
    seen = await (await client.get(f"/api/v1/deliveries/{ping_id}", headers=reader)).get_json()
    assert json.loads(seen["delivery"]["body"])["event"] == "ping"
    assert (await client.post(f"/api/v1/deliveries/{ping_id}/retry", headers=reader)).status_code == 403
    assert (await client.post(f"/api/v1/deliveries/{ping_id}/retry", headers=orgs.a.headers)).status_code == 202

    b = orgs.b.headers
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate-secret"), ("post", "/test"),
                         ("get", "/deliveries")):
        r = await getattr(client, method)(f"/api/v1/webhooks/{hook['id']}{path}", json={}, headers=b)
        assert r.status_code == 404 and (await r.get_json())["error"]["code"] == "not_found", (method, path)
    assert (await (await client.get("/api/v1/webhooks", headers=b)).get_json())["webhooks"] == []
    assert (await EventSubscription.get(id=hook["id"])).enabled


# ---------------------------------------------------------------- what is delivered


async def test_chat_events_arrive_signed_in_order_with_the_rest_shapes(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    org = live_orgs.a
    hook = await subscribe(http, org, receiver, ["*"])
    automation = await WebhookReceiver().start()
    try:
        agent = (await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": automation.url}, headers=org.headers)).json()["agent"]
        conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={}, headers=org.headers)).json()["conversation"]
        said = (await http.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "Where is my order?"},
                                headers=org.headers)).json()["message"]
        answered = (await http.post(f"/api/v1/conversations/{conv['id']}/originate",
                                    json={"content": "On its way", "role": "assistant", "external_message_id": "x-1"},
                                    headers=org.headers)).json()["message"]
        asked = await http.post(f"/api/v1/conversations/{conv['id']}/interactive", json={
            "callback_url": automation.url, "callback_id": "cb-1", "elements": [{"type": "text", "text": "Refund?"}, {"type": "boolean"}],
        }, headers=org.headers)
        assert asked.status_code == 201, asked.text
        question = asked.json()["message"]
        session = (await http.post("/api/v1/auth/login", json={"email": org.owner_email, "password": org.owner_password})).json()["token"]
        responded = await http.post(f"/api/v1/messages/{question['id']}/respond", json={"approved": True},
                                    headers={"Authorization": f"Bearer {session}"})
        assert responded.status_code == 200, responded.text
        settled = responded.json()["message"]
        await receiver.wait_for(lambda r: len(r.acknowledged) == 6)
    finally:
        await automation.stop()

    got = receiver.received
    assert [r.headers["X-Switchboard-Event"] for r in got] == [
        "conversation.created", "message.created", "message.created", "message.created", "message.updated", "interactive.responded",
    ]
    assert all(r.signed_with == [hook["secret"]] for r in got)
    assert all(r.headers["X-Switchboard-Delivery"].startswith("dlv_") for r in got)
    for r in got:
        assert set(r.json) == EVENT_KEYS and r.json["event"] == r.headers["X-Switchboard-Event"]
        assert r.json["id"].startswith("evt_") and r.json["organization_id"] == org.id and r.json["created_at"].endswith("Z")
    assert len({r.json["id"] for r in got}) == 6
    data = [r.json["data"] for r in got]
    assert data[0] == conv
    assert data[1] == said and data[2] == answered  # a person's message and an automation's
    assert data[3] == question and data[3]["interaction"]["status"] == "pending"
    assert data[4] == data[5] == settled and settled["interaction"]["status"] == "responded"


async def test_an_expired_question_is_announced(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    org = live_orgs.a
    await subscribe(http, org, receiver, ["interactive.expired"])
    agent = (await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": "http://127.0.0.1:9/x"}, headers=org.headers)).json()["agent"]
    conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={}, headers=org.headers)).json()["conversation"]
    expires = iso(utcnow() + timedelta(seconds=1))
    asked = await http.post(f"/api/v1/conversations/{conv['id']}/interactive", json={
        "callback_url": "http://127.0.0.1:9/cb", "callback_id": "cb", "elements": [{"type": "boolean"}], "expires_at": expires,
    }, headers=org.headers)
    assert asked.status_code == 201, asked.text
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    [event] = events_of(receiver)
    assert event["event"] == "interactive.expired"
    assert event["data"]["id"] == asked.json()["message"]["id"] and event["data"]["interaction"]["status"] == "expired"


async def test_entry_events_carry_the_rest_shape(client: Any, orgs: Orgs, receiver: WebhookReceiver, drain_outbox: DrainOutbox) -> None:
    hook = await subscribe(client, orgs.a, receiver, ["entry.created", "entry.updated", "entry.deleted"])
    a = orgs.a.headers

    async def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
        r = await getattr(client, method)(f"/api/v1{path}", json=body, headers=a)
        assert r.status_code == status, await r.get_data(as_text=True)
        return await r.get_json() if status != 204 else None

    db = (await call("post", "/databases", {"name": "CRM"}, 201))["data"]
    table = (await call("post", f"/databases/{db['id']}/tables", {"name": "Leads"}, 201))["data"]
    score = (await call("post", f"/tables/{table['id']}/fields", {"name": "Score", "type": "number"}, 201))["data"]
    name = table["fields"][0]
    created = (await call("post", f"/tables/{table['id']}/entries", {"values": {"Name": "Ada", "Score": 3}}, 201))["data"]
    updated = (await call("patch", f"/entries/{created['id']}", {"values": {"Score": 5}}))["data"]
    await call("delete", f"/entries/{created['id']}", None, 204)
    # A conversation and a message in the same organization: not asked for, not queued.
    agent = await make_agent(client, a)
    conv = await make_conversation(client, a, agent["id"])
    await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=a)
    await drain_outbox()

    # A new table comes with three empty entries: created too.
    queued = [i.event for i in await subscription_items(hook["id"])]
    assert queued == ["entry.created"] * 4 + ["entry.updated", "entry.deleted"]
    assert len(receiver.acknowledged) == 6 and not receiver.invalid
    got = [e for e in events_of(receiver) if e["data"]["id"] == created["id"]]
    assert [e["event"] for e in got] == ["entry.created", "entry.updated", "entry.deleted"]
    first, second, third = (e["data"] for e in got)
    assert first == {**created, "database_id": db["id"], "changed_fields": sorted([name["id"], score["id"]])}
    assert second == {**updated, "database_id": db["id"], "changed_fields": [score["id"]],
                      "previous_values": {score["id"]: created["values"][score["id"]]}}
    assert third["values"] == updated["values"] and third["id"] == created["id"] and third["deleted_at"].endswith("Z")
    assert (third["created_at"], third["updated_at"]) == (updated["created_at"], updated["updated_at"])


async def test_only_what_was_asked_for_and_only_this_organization(
    client: Any, orgs: Orgs, receiver: WebhookReceiver, drain_outbox: DrainOutbox
) -> None:
    hook = await subscribe(client, orgs.a, receiver, ["message.created"])
    paused = await subscribe(client, orgs.a, receiver, ["*"])
    r = await client.patch(f"/api/v1/webhooks/{paused['id']}", json={"enabled": False}, headers=orgs.a.headers)
    assert (await r.get_json())["webhook"]["disabled_reason"] == "disabled on request"
    for org in (orgs.a, orgs.b):
        agent = await make_agent(client, org.headers)
        conv = await make_conversation(client, org.headers, agent["id"])
        sent = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": f"from {org.name}"}, headers=org.headers)
        assert sent.status_code == 201
    await drain_outbox()
    [item] = await subscription_items(hook["id"])
    assert item.event == "message.created" and item.organization_id == orgs.a.id
    assert await subscription_items(paused["id"]) == []
    [event] = events_of(receiver)
    assert event["data"]["content"] == "from Acme"


async def test_an_organization_without_subscriptions_reads_none_per_message(client: Any, orgs: Orgs, query_log: Any) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    path = f"/api/v1/conversations/{conv['id']}/messages"
    await client.post(path, json={"content": "first"}, headers=orgs.a.headers)
    with query_log() as log:
        for n in range(3):
            assert (await client.post(path, json={"content": f"more {n}"}, headers=orgs.a.headers)).status_code == 201
    assert [q for q in log.queries if "event_subscriptions" in q] == []


# ---------------------------------------------------------------- how it is delivered


async def test_order_per_subject_retries_the_log_and_replay(
    client: Any, orgs: Orgs, receiver: WebhookReceiver, drain_outbox: DrainOutbox
) -> None:
    attempts: dict[str, int] = {}

    def respond(_: WebhookReceiver, r: Received) -> Any:
        if r.json["data"]["content"] == "first":  # fails twice, then is taken
            attempts["first"] = attempts.get("first", 0) + 1
            if attempts["first"] <= 2:
                return web.Response(status=500, text="busy")
        return web.json_response({"ok": True})

    receiver.respond = respond
    hook = await subscribe(client, orgs.a, receiver, ["message.created"])
    a = orgs.a.headers
    agent = await make_agent(client, a)
    one = await make_conversation(client, a, agent["id"])
    two = await make_conversation(client, a, agent["id"])
    for conv, content in ((one, "first"), (one, "second"), (two, "elsewhere")):
        assert (await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": content}, headers=a)).status_code == 201
    await receiver.wait_for(lambda r: len(r.acknowledged) == 3)
    order = [r.json["data"]["content"] for r in receiver.received]
    # One conversation's events one at a time, in order; another conversation's do not wait.
    assert order.index("elsewhere") < order.index("second")
    assert [c for c in order if c != "elsewhere"] == ["first", "first", "first", "second"]

    await drain_outbox()
    listed = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=a)
    deliveries = (await listed.get_json())["deliveries"]
    assert [(d["status"], d["attempts"], d["kind"], d["url"]) for d in deliveries] == [
        ("succeeded", 1, "event_subscription", receiver.url)] * 2 + [("succeeded", 3, "event_subscription", receiver.url)]
    first_id = deliveries[2]["id"]
    detail = (await (await client.get(f"/api/v1/deliveries/{first_id}", headers=a)).get_json())["delivery"]
    assert [(x["outcome"], x["status_code"]) for x in detail["attempt_log"]] == [("retry", 500), ("retry", 500), ("succeeded", 200)]
    assert json.loads(detail["body"])["data"]["content"] == "first"

    replayed = await client.post(f"/api/v1/deliveries/{first_id}/retry", headers=a)
    assert replayed.status_code == 202
    await receiver.wait_for(lambda r: len(r.acknowledged) == 4)
    again = receiver.received[-1]
    assert again.delivery_id == first_id and again.body == next(r.body for r in receiver.acknowledged if r.delivery_id == first_id)
    assert again.signed_with == [hook["secret"]]


async def test_failing_for_a_day_disables_until_enabled_again(
    client: Any, orgs: Orgs, receiver: WebhookReceiver, drain_outbox: DrainOutbox
) -> None:
    up = False
    receiver.respond = lambda _, r: web.json_response({"ok": True}) if up else web.Response(status=503)
    hook = await subscribe(client, orgs.a, receiver, ["message.created"])
    a = orgs.a.headers
    agent = await make_agent(client, a)
    conv = await make_conversation(client, a, agent["id"])
    path = f"/api/v1/conversations/{conv['id']}/messages"
    await client.post(path, json={"content": "while down"}, headers=a)

    async def shown() -> dict[str, Any]:
        return (await (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=a)).get_json())["webhook"]  # type: ignore[no-any-return]

    async def failing() -> bool:
        return (await shown())["failing_since"] is not None

    await wait_for(failing)
    assert (await shown())["enabled"] is True  # failing, but not for long
    # A day later: the next failed attempt (the ping here) disables it.
    await EventSubscription.filter(id=hook["id"]).update(failing_since=utcnow() - timedelta(hours=25))
    tested = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=a)
    result = await tested.get_json()
    assert tested.status_code == 200 and result["success"] is False
    assert result["delivery"]["event"] == "ping" and result["delivery"]["attempt_log"][0]["status_code"] == 503
    webhook = await shown()
    assert (webhook["enabled"], webhook["status"]) == (False, "disabled")
    assert "24 hours" in webhook["disabled_reason"] and webhook["disabled_at"] is not None
    assert await OutboxHold.filter(key=subscriptions.outbox_key(hook["id"])).exists()

    await client.post(path, json={"content": "while disabled"}, headers=a)  # not queued for it
    [held] = [i for i in await subscription_items(hook["id"]) if i.event == "message.created"]
    assert held.status in ("pending", "delivering")  # held: it waits for the subscription

    up = True
    enabled = await client.patch(f"/api/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=a)
    webhook = (await enabled.get_json())["webhook"]
    assert (webhook["enabled"], webhook["disabled_reason"], webhook["failing_since"]) == (True, None, None)
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    await drain_outbox()
    assert [r.json["data"]["content"] for r in receiver.acknowledged] == ["while down"]
    assert (await OutboxItem.get(id=held.id)).status == "succeeded"
    assert (await shown())["failing_since"] is None


async def test_a_ping_reports_what_the_endpoint_answered(client: Any, orgs: Orgs, receiver: WebhookReceiver) -> None:
    hook = await subscribe(client, orgs.a, receiver, ["push.failed"])
    r = await client.post(f"/api/v1/webhooks/{hook['id']}/test", headers=orgs.a.headers)
    result = await r.get_json()
    assert r.status_code == 200 and result["success"] is True
    delivery = result["delivery"]
    assert (delivery["status"], delivery["event"], delivery["attempts"], delivery["url"]) == ("succeeded", "ping", 1, receiver.url)
    [got] = receiver.received
    assert got.signed_with == [hook["secret"]] and got.json["data"] == {
        "subscription_id": hook["id"], "message": "This is a test event from Switchboard."}
    assert json.loads(delivery["body"]) == got.json


async def test_asking_for_an_event_takes_the_scope_that_reads_it(client: Any, orgs: Orgs) -> None:
    made = await client.post("/api/v1/api-keys", json={"name": "hooks only", "scopes": ["webhooks:read", "webhooks:write"]},
                             headers=orgs.a.headers)
    key = (await made.get_json())["api_key"]["key"]
    hooks_only = {"Authorization": f"Bearer {key}"}
    for events in (["message.created"], ["entry.created"], ["*"]):
        r = await client.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/e", "events": events}, headers=hooks_only)
        assert r.status_code == 403, (events, await r.get_data(as_text=True))
    assert await EventSubscription.filter(organization_id=orgs.a.id).count() == 0

