"""Send and wait: ``POST /conversations/:id/messages`` with ``wait`` answers with the agent's
next reply in the conversation, on the real server with a real database (PostgreSQL with a
pool of one connection, so a wait that held one would stall every other request)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any, AsyncIterator

import httpx
import pytest
from aiohttp import web

from app.kernel.config import Settings
from app.models.chat import Message
from app.services import replies
from tests.chat.conftest import running_server
from tests.chat.test_agent_runner import open_chat
from tests.conftest import TEST_REDIS_URL, EventRecorder, LiveServer, Org, Orgs, free_socket, make_orgs, wait_for
from tests.fakes.llm import FakeLLM, Reply, Text
from tests.fakes.webhook_receiver import Received, WebhookReceiver


@pytest.fixture
def settings(tmp_path: Any, db_url: str) -> Settings:
    """One database connection on PostgreSQL (SQLite has one anyway)."""
    if db_url.startswith("postgres"):
        db_url += ("&" if "?" in db_url else "?") + "minsize=1&maxsize=1"
    return Settings(data_dir=tmp_path, database_url=db_url, allow_private_webhooks=True)


@pytest.fixture
async def server(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=70) as client:
        yield client


async def webhook_chat(http: httpx.AsyncClient, org: Org, receiver: WebhookReceiver) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": receiver.url}, headers=org.headers)
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    receiver.secrets.append(agent["signing_secret"])
    return agent, await new_conversation(http, org, agent["id"])


async def new_conversation(http: httpx.AsyncClient, org: Org, agent_id: str) -> dict[str, Any]:
    r = await http.post(f"/api/v1/agents/{agent_id}/conversations/create", json={}, headers=org.headers)
    assert r.status_code == 201, r.text
    return r.json()["conversation"]  # type: ignore[no-any-return]


def originating(http: httpx.AsyncClient, org: Org, *answers: tuple[str | None, str]) -> Any:
    """A receiver's responder: on each delivery, the automation answers through originate
    with (conversation id, or None for the delivery's own; content) pairs, then acknowledges."""

    async def respond(_: WebhookReceiver, received: Received) -> web.Response:
        for conversation_id, content in answers:
            r = await http.post(
                f"/api/v1/conversations/{conversation_id or received.json['conversationId']}/originate",
                json={"content": content, "role": "assistant"}, headers=org.headers,
            )
            assert r.status_code == 201, r.text
        return web.json_response({"ok": True})

    return respond


async def send(http: httpx.AsyncClient, org: Org, conversation_id: str, **body: Any) -> httpx.Response:
    return await http.post(f"/api/v1/conversations/{conversation_id}/messages", json={"content": "What is 6 x 7?", **body},
                           headers=org.headers)


async def test_a_webhook_agent_answers_while_the_request_waits(server: httpx.AsyncClient, live_orgs: Orgs, receiver: WebhookReceiver) -> None:
    agent, conv = await webhook_chat(server, live_orgs.a, receiver)
    receiver.respond = originating(server, live_orgs.a, (None, "42"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = await send(server, live_orgs.a, conv["id"], wait=30)
    took = loop.time() - started
    assert r.status_code == 201, r.text
    body = r.json()
    message, reply = body["message"], body["reply"]
    assert body["success"] is True and message["role"] == "user" and message["content"] == "What is 6 x 7?"
    assert reply["role"] == "assistant" and reply["content"] == "42" and reply["conversation_id"] == conv["id"]
    assert reply["seq"] == message["seq"] + 1
    assert took < 10  # answered when the reply came, not at the deadline
    [delivered] = receiver.received
    assert delivered.signed_with and delivered.json["messageId"] == message["id"]
    # The documented answer, unchanged, when no wait is asked for.
    plain = await send(server, live_orgs.a, conv["id"])
    assert plain.status_code == 201 and "reply" not in plain.json()


async def test_no_reply_in_time_is_reply_null(server: httpx.AsyncClient, live_orgs: Orgs, receiver: WebhookReceiver) -> None:
    _, conv = await webhook_chat(server, live_orgs.a, receiver)  # the receiver acknowledges and never answers
    loop = asyncio.get_running_loop()
    started = loop.time()
    r = await send(server, live_orgs.a, conv["id"], wait=1)
    took = loop.time() - started
    assert r.status_code == 201, r.text
    assert r.json()["reply"] is None and r.json()["message"]["role"] == "user"
    assert 1.0 <= took < 3.0
    assert len(replies.arrivals) == 0  # the watch closed with the request


async def test_only_a_reply_in_its_own_conversation_counts(server: httpx.AsyncClient, live_orgs: Orgs, receiver: WebhookReceiver) -> None:
    """The automation first answers in another conversation of the same agent and asks the
    person a question (interactive: not a reply), then answers this one."""
    agent, conv = await webhook_chat(server, live_orgs.a, receiver)
    other = await new_conversation(server, live_orgs.a, agent["id"])
    answer_elsewhere = originating(server, live_orgs.a, (other["id"], "for the other conversation"))
    answer_here = originating(server, live_orgs.a, (None, "for this one"))

    async def respond(me: WebhookReceiver, received: Received) -> web.Response:
        await answer_elsewhere(me, received)
        asked = await server.post(f"/api/v1/conversations/{received.json['conversationId']}/interactive", json={
            "callback_url": receiver.url, "callback_id": "q1",
            "elements": [{"type": "text", "text": "Sure?"}, {"type": "boolean"}],
        }, headers=live_orgs.a.headers)
        assert asked.status_code == 201, asked.text
        return await answer_here(me, received)  # type: ignore[no-any-return]

    receiver.respond = respond
    r = await send(server, live_orgs.a, conv["id"], wait=30)
    assert r.status_code == 201, r.text
    reply = r.json()["reply"]
    assert reply["content"] == "for this one" and reply["conversation_id"] == conv["id"]
    assert reply["seq"] == r.json()["message"]["seq"] + 2  # after the question
    assert await Message.filter(conversation_id=other["id"], content="for the other conversation").exists()


async def test_waiting_holds_no_database_connection(live_server: LiveServer, server: httpx.AsyncClient, live_orgs: Orgs,
                                                     receiver: WebhookReceiver) -> None:
    """While a request waits, requests that read and write (one in a transaction) complete, then
    the reply ends the wait; on PostgreSQL the server has a single pooled connection."""
    agent, conv = await webhook_chat(server, live_orgs.a, receiver)
    waiting = asyncio.create_task(send(server, live_orgs.a, conv["id"], wait=30))
    await receiver.wait_for(lambda r: len(r.received) == 1)
    await wait_for(lambda: replies.arrivals.watching(conv["id"]) == 1)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=5) as other:
        listed = await other.get(f"/api/v1/conversations/{conv['id']}/messages", headers=live_orgs.a.headers)
        assert listed.status_code == 200 and [m["role"] for m in listed.json()["messages"]] == ["user"]
        renamed = await other.patch(f"/api/v1/agents/{agent['id']}", json={"name": "renamed"}, headers=live_orgs.a.headers)
        assert renamed.status_code == 200, renamed.text
        assert not waiting.done()
        answered = await other.post(f"/api/v1/conversations/{conv['id']}/originate", json={"content": "done", "role": "assistant"},
                                    headers=live_orgs.a.headers)
        assert answered.status_code == 201
    r = await asyncio.wait_for(waiting, 10)
    assert r.json()["reply"]["id"] == answered.json()["message"]["id"]


async def test_a_client_hanging_up_leaves_no_waiter(live_server: LiveServer, server: httpx.AsyncClient, live_orgs: Orgs,
                                                     receiver: WebhookReceiver) -> None:
    _, conv = await webhook_chat(server, live_orgs.a, receiver)
    reader, writer = await asyncio.open_connection("127.0.0.1", live_server.port)
    body = b'{"content": "anyone?", "wait": 60}'
    writer.write(
        f"POST /api/v1/conversations/{conv['id']}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {live_orgs.a.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    await wait_for(lambda: replies.arrivals.watching(conv["id"]) == 1)
    writer.close()
    await writer.wait_closed()
    await wait_for(lambda: replies.arrivals.watching(conv["id"]) == 0)
    assert len(replies.arrivals) == 0


async def test_a_custom_agent_s_final_reply(live_server: LiveServer, server: httpx.AsyncClient, live_orgs: Orgs, sockets: Any,
                                            llm: FakeLLM, events: EventRecorder) -> None:
    """The reply is the stored message, not the stream; a reply to an earlier message that is
    stored after this one was sent is not this one's."""
    chat = await open_chat(server, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("First answer, slowly.", chunks=4)], delay=0.2), Reply([Text("Second answer.")]))
    first = await send(server, live_orgs.a, chat.conv_id, content="first")
    await events.wait_for("message.delta", lambda d: d["conversation_id"] == chat.conv_id)  # the first reply is streaming
    r = await send(server, live_orgs.a, chat.conv_id, content="second", wait=30)
    assert r.status_code == 201, r.text
    reply = r.json()["reply"]
    assert reply["content"] == "Second answer." and reply["metadata"]["model"] == "model-1" and "status" not in reply
    stored = await Message.filter(conversation_id=chat.conv_id).order_by("seq").values_list("role", "content")
    assert stored == [("user", "first"), ("user", "second"), ("assistant", "First answer, slowly."), ("assistant", "Second answer.")]
    assert first.json()["message"]["seq"] == 1

    # A reply that failed is final too: it is answered, with its status.
    llm.script(Reply(status=400))
    failed = (await send(server, live_orgs.a, chat.conv_id, content="third", wait=30)).json()["reply"]
    assert failed["status"] == "error" and failed["content"].startswith("The agent could not answer")


@pytest.mark.parametrize("wait", [61, -1, "5", 1.5, True])
async def test_a_wait_out_of_range_is_refused(client: Any, orgs: Orgs, wait: Any) -> None:
    agent = (await (await client.post("/api/v1/agents", json={"name": "n8n", "webhook_url": "http://127.0.0.1:9/hook"},
                                      headers=orgs.a.headers)).get_json())["agent"]
    conv = (await (await client.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={},
                                     headers=orgs.a.headers)).get_json())["conversation"]
    r = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi", "wait": wait}, headers=orgs.a.headers)
    assert r.status_code == 422
    error = (await r.get_json())["error"]
    assert error["code"] == "validation_failed" and "wait" in error["details"]
    assert not await Message.filter(conversation_id=conv["id"]).exists()


async def test_waiting_needs_the_right_to_read(client: Any, orgs: Orgs) -> None:
    created = await client.post("/api/v1/api-keys", json={"name": "writer", "scopes": ["conversations:write"]}, headers=orgs.a.headers)
    writer = {"Authorization": f"Bearer {(await created.get_json())['api_key']['key']}"}
    agent = (await (await client.post("/api/v1/agents", json={"name": "n8n", "webhook_url": "http://127.0.0.1:9/hook"},
                                      headers=orgs.a.headers)).get_json())["agent"]
    conv = (await (await client.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={},
                                     headers=orgs.a.headers)).get_json())["conversation"]
    r = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi", "wait": 5}, headers=writer)
    assert r.status_code == 403 and (await r.get_json())["error"]["code"] == "insufficient_permissions"
    assert not await Message.filter(conversation_id=conv["id"]).exists()
    # Another organization's conversation: 404, whether or not it waits.
    r = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi", "wait": 5}, headers=orgs.b.headers)
    assert r.status_code == 404


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
async def test_a_reply_stored_by_another_process_ends_the_wait(settings: Settings, receiver: WebhookReceiver) -> None:
    """Two gateway processes on one database and Redis: the request waits on the first, the
    automation answers through the second."""
    settings = settings.with_overrides(redis_url=TEST_REDIS_URL)
    async with running_server(settings) as first, httpx.AsyncClient(base_url=first.url, timeout=70) as http:
        orgs = await make_orgs()
        _, conv = await webhook_chat(http, orgs.a, receiver)
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        env = {
            **os.environ,
            "SWITCHBOARD_DATA_DIR": str(settings.data_dir / "second"),
            "DATABASE_URL": settings.effective_database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS": "1",
        }
        proc = subprocess.Popen([sys.executable, "-m", "app.faces.cli", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as second:

                async def up() -> bool:
                    try:
                        return (await second.get("/healthz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_for(up, timeout=20)
                receiver.respond = originating(second, orgs.a, (None, "from the second process"))
                loop = asyncio.get_running_loop()
                started = loop.time()
                r = await send(http, orgs.a, conv["id"], wait=30)
                assert r.json()["reply"]["content"] == "from the second process"
                assert loop.time() - started < 10
        finally:
            proc.terminate()
            proc.wait(timeout=10)
