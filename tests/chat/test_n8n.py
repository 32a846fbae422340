"""The requests n8n's Lerty community node (n8n-nodes-lerty) makes, byte for byte as its
source builds them: its trigger reading our webhook body, its "reply to conversation"
(form-encoded, to the body's ``response_webhook``), its fallback reply and "send message"
(JSON, to ``/webhooks/agents/:id/message``), its typing call and its credential test."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from app.kernel.config import Settings
from app.models.chat import Conversation, Message
from tests.chat.test_agent_runner import open_chat
from tests.chat.test_webhooks import conversation, send, webhook_agent
from tests.conftest import DrainOutbox, LiveServer, Orgs
from tests.fakes.llm import FakeLLM, Reply, Text
from tests.fakes.webhook_receiver import WebhookReceiver

SECRET = "n8n-trigger-secret"
PUBLIC_URL = "https://chat.example.com"  # SWITCHBOARD_PUBLIC_URL: where response_webhook points


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_overrides(public_url=PUBLIC_URL)


def on_server(server: LiveServer, url: str) -> str:
    """A URL under the public URL, as the reverse proxy in front of the server would route it."""
    assert url.startswith(PUBLIC_URL + "/")
    return server.url + url[len(PUBLIC_URL):]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def trigger_output(body: dict[str, Any], headers: dict[str, str], event_types: list[str]) -> dict[str, Any] | None:
    """What LertyTrigger.webhook() does with a delivery: the secret check on the bare header,
    the type filter, and the fields it lifts. None when it drops the delivery."""
    received = headers.get("X-Lerty-Signature") or headers.get("Authorization")
    if received != SECRET:
        return None
    if body.get("type") and body["type"] not in event_types:
        return None
    return {
        **body,
        "conversation_id": body.get("conversation_id") or body.get("conversationId") or body.get("thread_id"),
        "response_webhook": body.get("response_webhook") or body.get("responseWebhook") or body.get("callback_url"),
    }


async def n8n_agent(http: httpx.AsyncClient, orgs: Orgs, receiver: WebhookReceiver) -> dict[str, Any]:
    return await webhook_agent(http, orgs.a.headers, receiver, webhook_headers={"X-Lerty-Signature": SECRET})


async def test_a_reply_from_n8n_lands_in_the_conversation(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                         receiver: WebhookReceiver, drain_outbox: DrainOutbox) -> None:
    key = live_orgs.a.api_key
    # The credential test.
    listed = await http.get("/api/v1/agents", headers={"Authorization": f"Bearer {key}"})
    assert listed.status_code == 200 and "agents" in listed.json()

    agent = await n8n_agent(http, live_orgs, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    sent = await send(http, live_orgs.a.headers, conv["id"], "Where is my order?")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    got = receiver.received[0]
    assert got.signed_with == [agent["signing_secret"]]  # our own signature is still there
    item = trigger_output(got.json, got.headers, ["user_message"])
    assert item is not None, got.json
    assert item["conversation_id"] == conv["id"] and item["type"] == "user_message" and item["origin"] == "person"
    assert item["user_id"] == live_orgs.a.owner_id and item["organization_id"] == live_orgs.a.id
    assert item["message_id"] == sent["id"] and item["agent_id"] == agent["id"]
    assert item["response_webhook"] == f"{PUBLIC_URL}/webhooks/agents/{agent['id']}/reply"
    reply_url = on_server(live_server, item["response_webhook"])
    # The documented keys are unchanged beside the new ones.
    assert item["conversationId"] == conv["id"] and item["messageId"] == sent["id"] and item["event"] == "message.created"
    # A trigger that listens for agent responses only drops it; a wrong secret too.
    assert trigger_output(got.json, got.headers, ["agent_response"]) is None
    assert trigger_output(got.json, {**got.headers, "X-Lerty-Signature": "other"}, ["user_message"]) is None

    # Its typing call goes to the API base it derives from response_webhook.
    parts = urlsplit(reply_url)
    typing = await http.post(
        f"{parts.scheme}://{parts.netloc}/api/agents/{agent['id']}/callback",
        json={"data": {"typing": True}, "conversation_id": item["conversation_id"], "callback_type": "typing"},
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
    )
    assert typing.status_code == 200, typing.text

    # "Reply to conversation": form-encoded, empty user and organization ids are fine.
    form = {"conversation_id": item["conversation_id"], "content": "It ships today.", "message_id": str(uuid.uuid4()),
            "timestamp": now_iso(), "user_id": "", "organization_id": ""}
    r = await http.post(reply_url, content=urlencode(form),
                        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    reply = r.json()["message"]
    assert reply["role"] == "assistant" and reply["content"] == "It ships today." and reply["conversation_id"] == conv["id"]
    assert reply["external_message_id"] == form["message_id"]
    # The same message_id again is the duplicate originate reports; nothing more is stored.
    again = await http.post(reply_url, content=urlencode(form),
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-www-form-urlencoded"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "duplicate_message"
    # The same fields as JSON, with the ids filled in.
    as_json = {**form, "message_id": str(uuid.uuid4()), "content": "Anything else?", "user_id": live_orgs.a.owner_id,
               "organization_id": live_orgs.a.id}
    r = await http.post(reply_url, json=as_json, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201, r.text
    history = (await http.get(f"/api/v1/conversations/{conv['id']}/messages", headers=live_orgs.a.headers)).json()["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Where is my order?"), ("assistant", "It ships today."), ("assistant", "Anything else?"),
    ]
    # Agent messages are not sent back to the agent's webhook: one delivery in the outbox, done.
    items = [i for i in await drain_outbox() if i.conversation_id == conv["id"]]
    assert [(i.message_id, i.status) for i in items] == [(sent["id"], "succeeded")] and len(receiver.received) == 1


async def test_without_a_public_url_no_host_header_picks_the_reply_url(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    """The node sends its API key to response_webhook: a person sending a message must not be
    able to point it at their own server with a Host header. Without a configured public URL
    the body says null, and the node answers through its credential's base URL."""
    from app.services import files

    files.configure(live_server.settings.with_overrides(public_url=""))
    try:
        agent = await n8n_agent(http, live_orgs, receiver)
        conv = await conversation(http, live_orgs.a.headers, agent["id"])
        r = await http.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi"},
                            headers={**live_orgs.a.headers, "Host": "evil.example:8443"})
        assert r.status_code == 201, r.text
        await receiver.wait_for(lambda r: len(r.received) == 1)
        assert receiver.received[0].json["response_webhook"] is None
    finally:
        files.configure(live_server.settings)


async def test_reply_errors_are_the_contracts(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                              receiver: WebhookReceiver) -> None:
    agent = await n8n_agent(http, live_orgs, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    url = f"/webhooks/agents/{agent['id']}/reply"
    form_headers = {"Authorization": f"Bearer {live_orgs.a.api_key}", "Content-Type": "application/x-www-form-urlencoded"}
    missing = await http.post(url, content=urlencode({"conversation_id": conv["id"]}), headers=form_headers)
    assert missing.status_code == 422 and "content" in missing.json()["error"]["details"]
    assert (await http.post(url, content=urlencode({"conversation_id": conv["id"], "content": "x"}))).status_code == 401
    other_org = await http.post(url, content=urlencode({"conversation_id": conv["id"], "content": "x"}),
                                headers={**form_headers, "Authorization": f"Bearer {live_orgs.b.api_key}"})
    assert other_org.status_code == 404 and other_org.json()["error"]["code"] == "not_found"
    wrong_org = await http.post(url, content=urlencode({"conversation_id": conv["id"], "content": "x", "organization_id": live_orgs.b.id}),
                                headers=form_headers)
    assert wrong_org.status_code == 404
    unknown = await http.post(url, content=urlencode({"conversation_id": "conv_nope", "content": "x"}), headers=form_headers)
    assert unknown.status_code == 404
    nul = await http.post(url, content=urlencode({"conversation_id": conv["id"], "content": "a\x00b"}), headers=form_headers)
    assert nul.status_code == 422
    bad_json = await http.post(url, content=b"{nope", headers={"Authorization": f"Bearer {live_orgs.a.api_key}",
                                                                "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    assert await Message.filter(conversation_id=conv["id"]).count() == 0


async def test_fallback_reply_and_send_message(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                               receiver: WebhookReceiver) -> None:
    key_headers = {"Authorization": f"Bearer {live_orgs.a.api_key}", "Accept": "application/json"}
    agent = await n8n_agent(http, live_orgs, receiver)
    url = f"/webhooks/agents/{agent['id']}/message"
    conv = await conversation(http, live_orgs.a.headers, agent["id"])

    # Without a response_webhook the node replies here, as agent_response.
    fallback = {"id": str(uuid.uuid4()), "content": "Done.", "conversationId": conv["id"], "agentId": agent["id"],
                "type": "agent_response", "timestamp": now_iso()}
    r = await http.post(url, json=fallback, headers=key_headers)
    assert r.status_code == 201, r.text
    message = r.json()["message"]  # the node outputs response.message
    assert message["role"] == "assistant" and message["conversation_id"] == conv["id"] and message["content"] == "Done."
    dup = await http.post(url, json=fallback, headers=key_headers)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_message"

    # "Send message" with a conversation id we never issued (the node's conversation_<ms>).
    client_conv = f"conversation_{int(time.time() * 1000)}"  # what the node makes up
    first = {"id": str(uuid.uuid4()), "content": "New order from the shop", "conversationId": client_conv,
             "type": "user_message", "timestamp": now_iso(), "metadata": {"order": "A-17"}}
    r = await http.post(url, json=first, headers=key_headers)
    assert r.status_code == 201, r.text
    opened = r.json()["message"]
    assert opened["role"] == "user" and opened["user_id"] == live_orgs.a.owner_id  # the organization's owner
    assert opened["metadata"] == {"metadata": {"order": "A-17"}}
    stored = await Conversation.get(id=opened["conversation_id"])
    assert stored.client_id == client_conv and stored.agent_id == agent["id"]  # type: ignore[attr-defined]
    # The agent's webhook receives it, marked as posted by an automation.
    await receiver.wait_for(lambda r: len(r.received) == 1)
    body = receiver.received[0].json
    assert body["messageId"] == opened["id"] and body["origin"] == "automation" and body["type"] == "user_message"
    assert body["conversation_id"] == opened["conversation_id"]

    # The same client id routes to the same conversation; a file link rides along.
    second = {"id": str(uuid.uuid4()), "content": "", "conversationId": client_conv, "userId": live_orgs.a.owner_id,
              "type": "user_message", "timestamp": now_iso(), "fileUrl": "https://files.example/invoice.pdf",
              "fileName": "invoice.pdf", "fileType": "application/pdf"}
    r = await http.post(url, json=second, headers=key_headers)
    assert r.status_code == 201, r.text
    follow = r.json()["message"]
    assert follow["conversation_id"] == opened["conversation_id"] and follow["content"] == "https://files.example/invoice.pdf"
    assert follow["metadata"]["file"] == {"url": "https://files.example/invoice.pdf", "name": "invoice.pdf", "type": "application/pdf"}
    assert await Conversation.filter(client_id=client_conv).count() == 1
    # Typing with the client's id, and a reply addressed by it.
    typing = await http.post(f"/api/agents/{agent['id']}/callback",
                             json={"data": {"typing": False}, "conversation_id": client_conv, "callback_type": "typing"},
                             headers=key_headers)
    assert typing.status_code == 200, typing.text
    r = await http.post(url, json={**fallback, "id": str(uuid.uuid4()), "conversationId": client_conv}, headers=key_headers)
    assert r.status_code == 201 and r.json()["message"]["conversation_id"] == opened["conversation_id"]
    # Dedup on id.
    dup = await http.post(url, json=first, headers=key_headers)
    assert dup.status_code == 409
    # A client id longer than any id of ours works the same way.
    long_conv = f"conversation_{int(time.time() * 1000)}-{uuid.uuid4()}"
    r1 = await http.post(url, json={**first, "id": str(uuid.uuid4()), "conversationId": long_conv}, headers=key_headers)
    r2 = await http.post(url, json={**first, "id": str(uuid.uuid4()), "conversationId": long_conv}, headers=key_headers)
    assert r1.status_code == r2.status_code == 201, (r1.text, r2.text)
    assert r1.json()["message"]["conversation_id"] == r2.json()["message"]["conversation_id"] != opened["conversation_id"]
    # The agent-addressed originate of the contract takes the client's id too.
    r = await http.post(f"/api/v1/agents/{agent['id']}/messages", json={"conversation_id": long_conv, "content": "ok"},
                        headers=key_headers)
    assert r.status_code == 201 and r.json()["message"]["conversation_id"] == r1.json()["message"]["conversation_id"]


async def test_message_endpoint_refuses_what_it_cannot_store(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                             receiver: WebhookReceiver) -> None:
    key_headers = {"Authorization": f"Bearer {live_orgs.a.api_key}"}
    agent = await n8n_agent(http, live_orgs, receiver)
    url = f"/webhooks/agents/{agent['id']}/message"
    base = {"id": str(uuid.uuid4()), "content": "hi", "conversationId": "conversation_1", "type": "user_message"}
    cases = [
        ({**base, "type": "file_attachment"}, "type"),
        ({**base, "agentId": "agt_other"}, "agentId"),
        ({**base, "userId": "usr_nobody"}, "user_id"),
        ({**base, "fileUrl": "javascript:alert(1)", "content": ""}, "fileUrl"),
        ({k: v for k, v in base.items() if k != "conversationId"}, "conversationId"),
    ]
    cases += [
        ({**base, "content": "  "}, "content"),
        ({**base, "content": "x" * 40_001}, "content"),
        ({**base, "id": "i" * 300}, "external_message_id"),
    ]
    for body, field in cases:
        r = await http.post(url, json=body, headers=key_headers)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["details"], r.json()
    # Another agent's conversation is not a client id to open a conversation under.
    other_agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    theirs = await conversation(http, live_orgs.a.headers, other_agent["id"])
    r = await http.post(url, json={**base, "conversationId": theirs["id"]}, headers=key_headers)
    assert r.status_code == 404
    other = await http.post(f"/webhooks/agents/{agent['id']}/message", json=base, headers={"Authorization": f"Bearer {live_orgs.b.api_key}"})
    assert other.status_code == 404
    session = (await http.post("/api/v1/auth/login", json={"email": live_orgs.a.owner_email, "password": live_orgs.a.owner_password})).json()["token"]
    as_person = await http.post(url, json=base, headers={"Authorization": f"Bearer {session}"})
    assert as_person.status_code == 403
    assert await Conversation.filter(agent_id=agent["id"]).count() == 0


async def test_webhook_headers_are_sealed_and_masked(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                     receiver: WebhookReceiver) -> None:
    agent = await n8n_agent(http, live_orgs, receiver)
    shown = (await http.get(f"/api/v1/agents/{agent['id']}?detailed=true", headers=live_orgs.a.headers)).json()["agent"]
    assert shown["webhook_headers"] == {"X-Lerty-Signature": "********"}
    from app.models.chat import Agent

    stored = await Agent.get(id=agent["id"])
    assert SECRET not in str(stored.webhook_headers)  # encrypted at rest
    # The mask sent back keeps the value; a new header is added beside it.
    r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_headers": {"X-Lerty-Signature": "********", "X-Extra": "1"}},
                         headers=live_orgs.a.headers)
    assert r.status_code == 200, r.text
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "hello")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    assert receiver.received[0].headers["X-Lerty-Signature"] == SECRET and receiver.received[0].headers["X-Extra"] == "1"
    for bad, field in (({"X-Switchboard-Signature": "x"}, "webhook_headers.X-Switchboard-Signature"),
                       ({"Content-Type": "text/plain"}, "webhook_headers.Content-Type"),
                       ({"Bad Name": "x"}, "webhook_headers.Bad Name"),
                       ({"X-New": "********"}, "webhook_headers.X-New")):
        r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_headers": bad}, headers=live_orgs.a.headers)
        assert r.status_code == 422 and field in r.json()["error"]["details"], r.text
    bad_value = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_headers": {"X-Lerty-Signature": "a\u0001b"}},
                                 headers=live_orgs.a.headers)
    assert bad_value.status_code == 422
    # Pointing the agent elsewhere needs the values again: a masked value cannot be read by
    # moving the URL to a receiver of one's own.
    moved = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_url": receiver.url + "/elsewhere"}, headers=live_orgs.a.headers)
    assert moved.status_code == 422 and "webhook_headers" in moved.json()["error"]["details"]
    masked = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_url": receiver.url + "/elsewhere",
                                                                      "webhook_headers": {"X-Lerty-Signature": "********"}},
                              headers=live_orgs.a.headers)
    assert masked.status_code == 422
    # null removes them all, from the next delivery on.
    r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"webhook_headers": None}, headers=live_orgs.a.headers)
    assert r.json()["agent"]["webhook_headers"] == {}
    await send(http, live_orgs.a.headers, conv["id"], "again")
    await receiver.wait_for(lambda r: len(r.received) == 2)
    assert "X-Lerty-Signature" not in receiver.received[1].headers and "X-Extra" not in receiver.received[1].headers


async def test_a_custom_agent_answers_a_message_sent_through_its_endpoint(live_server: LiveServer, live_orgs: Orgs,
                                                                          http: httpx.AsyncClient, sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("On it.")]))
    r = await http.post(f"/webhooks/agents/{chat.agent_id}/message",
                        json={"id": str(uuid.uuid4()), "content": "Summarise today's orders", "conversationId": chat.conv_id,
                              "type": "user_message", "timestamp": now_iso()},
                        headers={"Authorization": f"Bearer {live_orgs.a.api_key}"})
    assert r.status_code == 201, r.text
    [reply] = await chat.wait_replies(1)
    assert reply["content"] == "On it." and reply["conversation_id"] == chat.conv_id
