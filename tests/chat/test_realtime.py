"""socket.io against the real server on loopback: auth, rooms, events, acks, sync, typing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import socketio

from tests.conftest import EventRecorder, LiveServer, Orgs, wait_for


async def add_member(http: httpx.AsyncClient, headers: dict[str, str], email: str, role: str = "member") -> tuple[str, str]:
    r = await http.post("/api/v1/organization/members", json={"email": email, "role": role}, headers=headers)
    assert r.status_code == 201, r.text
    invite = r.json()
    accepted = await http.post(
        "/api/v1/auth/accept-invite", json={"token": invite["invite_token"], "password": "member password 1", "name": "m"}
    )
    assert accepted.status_code == 200, accepted.text
    return accepted.json()["user"]["id"], accepted.json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def setup_agent(http: httpx.AsyncClient, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    r = await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook", **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["agent"]  # type: ignore[no-any-return]


async def new_conversation(http: httpx.AsyncClient, headers: dict[str, str], agent_id: str, **body: Any) -> dict[str, Any]:
    r = await http.post(f"/api/v1/agents/{agent_id}/conversations/create", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["conversation"]  # type: ignore[no-any-return]


async def originate(http: httpx.AsyncClient, headers: dict[str, str], conv_id: str, content: str, **extra: Any) -> dict[str, Any]:
    r = await http.post(
        f"/api/v1/conversations/{conv_id}/originate", json={"content": content, "role": "assistant", **extra}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()["message"]  # type: ignore[no-any-return]


async def test_connect_needs_a_valid_token(live_server: LiveServer, live_orgs: Orgs, sockets) -> None:
    for token in [None, "", "ak_wrong", "st_wrong"]:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sockets(live_server.url, token)
    client = await sockets(live_server.url, live_orgs.a.api_key)
    assert client.sio.connected


async def test_own_devices_see_own_messages_and_agent_replies(live_server: LiveServer, live_orgs: Orgs, http, sockets, events: EventRecorder) -> None:
    agent = await setup_agent(http, live_orgs.a.headers)
    _, token = await add_member(http, live_orgs.a.headers, "m@acme.example")
    phone = await sockets(live_server.url, token)
    laptop = await sockets(live_server.url, token)

    conv = await new_conversation(http, bearer(token), agent["id"], title="hello")
    await wait_for(lambda: phone.of("conversation.created") and laptop.of("conversation.created"))
    assert phone.of("conversation.created")[0]["id"] == conv["id"]

    ack = await phone.call("message.send", {"conversation_id": conv["id"], "content": "from my phone"})
    assert ack["success"] is True and ack["message"]["seq"] == 1 and ack["message"]["role"] == "user"
    await wait_for(lambda: laptop.of("message.created") and phone.of("message.created"))
    assert laptop.of("message.created")[0] == ack["message"]

    reply = await originate(http, live_orgs.a.headers, conv["id"], "hi there")
    await wait_for(lambda: len(laptop.of("message.created")) == 2)
    assert laptop.of("message.created")[1] == reply and reply["seq"] == 2
    # What the bus emitted is what each device received, the ack and the REST answer too.
    assert events.of("message.created") == [ack["message"], reply] == laptop.of("message.created") == phone.of("message.created")
    assert events.of("conversation.created") == [conv] == laptop.of("conversation.created")

    bad = await phone.call("message.send", {"conversation_id": conv["id"], "content": ""})
    assert bad["error"]["code"] == "validation_failed"
    junk = await phone.call("message.send", "not an object")
    assert junk["error"]["code"] == "validation_failed"


async def test_subscribe_rules_and_isolation(live_server: LiveServer, live_orgs: Orgs, http, sockets, events: EventRecorder) -> None:
    agent = await setup_agent(http, live_orgs.a.headers)
    member_id, member = await add_member(http, live_orgs.a.headers, "m@acme.example")
    _, other = await add_member(http, live_orgs.a.headers, "o@acme.example")
    _, admin = await add_member(http, live_orgs.a.headers, "a@acme.example", role="admin")
    conv = await new_conversation(http, bearer(member), agent["id"])

    snoop = await sockets(live_server.url, other)
    denied = await snoop.call("subscribe", {"conversation_id": conv["id"]})
    assert denied["error"]["code"] == "not_found"
    stranger = await sockets(live_server.url, live_orgs.b.api_key)
    assert (await stranger.call("subscribe", {"conversation_id": conv["id"]}))["error"]["code"] == "not_found"
    assert (await stranger.call("sync", {"conversation_id": conv["id"], "after_seq": 0}))["error"]["code"] == "not_found"
    assert (await stranger.call("message.send", {"conversation_id": conv["id"], "content": "x"}))["error"]["code"] == "not_found"

    watcher = await sockets(live_server.url, admin)
    ok = await watcher.call("subscribe", {"conversation_id": conv["id"]})
    assert ok["success"] is True and ok["last_seq"] == 0
    automation = await sockets(live_server.url, live_orgs.a.api_key)
    assert (await automation.call("subscribe", {"conversation_id": conv["id"]}))["success"] is True

    first = await originate(http, live_orgs.a.headers, conv["id"], "one")
    await wait_for(lambda: watcher.of("message.created") and automation.of("message.created"))
    assert watcher.of("message.created")[0]["id"] == first["id"]

    assert (await watcher.call("unsubscribe", {"conversation_id": conv["id"]}))["success"] is True
    second = await originate(http, live_orgs.a.headers, conv["id"], "two")
    await wait_for(lambda: len(automation.of("message.created")) == 2)
    emitted = events.all[-1]
    assert emitted == ("message.created", [f"conv:{conv['id']}", f"user:{member_id}"], second)
    # Sent (it was emitted before the answer came back) but not to the ones outside its rooms:
    # a round trip on each of their connections comes after anything sent to it before.
    for client in (watcher, snoop, stranger):
        await client.settle()
    assert len(watcher.of("message.created")) == 1
    assert snoop.of("message.created") == [] and stranger.of("message.created") == []
    assert stranger.of("conversation.created") == []


async def test_sync_after_reconnect_has_no_gap(live_server: LiveServer, live_orgs: Orgs, http, sockets) -> None:
    agent = await setup_agent(http, live_orgs.a.headers)
    _, token = await add_member(http, live_orgs.a.headers, "m@acme.example")
    conv = await new_conversation(http, bearer(token), agent["id"])
    client = await sockets(live_server.url, token)
    for i in range(3):
        await originate(http, live_orgs.a.headers, conv["id"], f"online {i}")
    await wait_for(lambda: len(client.of("message.created")) == 3)
    last_seen = max(m["seq"] for m in client.of("message.created"))
    await client.close()

    missed = [await originate(http, live_orgs.a.headers, conv["id"], f"offline {i}") for i in range(4)]

    again = await sockets(live_server.url, token)
    ack = await again.call("sync", {"conversation_id": conv["id"], "after_seq": last_seen})
    assert ack["success"] is True and ack["has_more"] is False
    assert [m["seq"] for m in ack["messages"]] == [4, 5, 6, 7]
    assert [m["id"] for m in ack["messages"]] == [m["id"] for m in missed]
    assert (await again.call("sync", {"conversation_id": conv["id"], "after_seq": -1}))["error"]["code"] == "validation_failed"
    for huge in (2**63, 2**70):
        assert (await again.call("sync", {"conversation_id": conv["id"], "after_seq": huge}))["error"]["code"] == "validation_failed"
    assert (await again.call("sync", {"conversation_id": conv["id"], "after_seq": 2**63 - 1}))["messages"] == []


async def test_typing_indicator_times_out_and_is_cleared_by_a_reply(live_server: LiveServer, live_orgs: Orgs, http, sockets) -> None:
    agent = await setup_agent(http, live_orgs.a.headers)
    conv = await new_conversation(http, live_orgs.a.headers, agent["id"])
    client = await sockets(live_server.url, live_orgs.a.api_key)
    await client.call("subscribe", {"conversation_id": conv["id"]})
    path = f"/api/agents/{agent['id']}/callback"

    body = {"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": True, "label": "Thinking...", "timeout": 300}}
    r = await http.post(path, json=body, headers=live_orgs.a.headers)
    assert r.status_code == 200 and r.json() == {"success": True}
    await wait_for(lambda: len(client.of("typing")) == 2, timeout=3)
    on, off = client.of("typing")
    assert on == {"conversation_id": conv["id"], "agent_id": agent["id"], "typing": True, "label": "Thinking...", "show_dots": True}
    assert off["typing"] is False

    body["data"] = {"typing": True, "show_dots": False, "timeout": 600000}
    await http.post(path, json=body, headers=live_orgs.a.headers)
    await wait_for(lambda: len(client.of("typing")) == 3)
    assert client.of("typing")[2]["show_dots"] is False
    await originate(http, live_orgs.a.headers, conv["id"], "done thinking")
    await wait_for(lambda: len(client.of("typing")) == 4)
    assert client.of("typing")[3]["typing"] is False

    for bad in [
        {"callback_type": "nope", "conversation_id": conv["id"], "data": {"typing": True}},
        {"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": True, "label": "x" * 201}},
        {"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": True, "timeout": 600001}},
        {"callback_type": "typing", "conversation_id": conv["id"], "data": {}},
        {"callback_type": "typing", "conversation_id": conv["id"]},
    ]:
        r = await http.post(path, json=bad, headers=live_orgs.a.headers)
        assert r.status_code == 422, bad
    assert (await http.post(path, json={"callback_type": "typing", "conversation_id": "conv_nope", "data": {"typing": True}}, headers=live_orgs.a.headers)).status_code == 404
    other_org = await http.post(path, json={"callback_type": "typing", "conversation_id": conv["id"], "data": {"typing": True}}, headers=live_orgs.b.headers)
    assert other_org.status_code == 404
