"""Custom agents answering on the real server: streamed deltas over socket.io, the stored
reply, typing, errors and retries, stop, one reply at a time, a server stopping mid-reply.
The provider is a fake LLM service speaking Anthropic's and OpenAI's streaming formats,
reached through the official SDKs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.models.chat import Message
from tests.chat.conftest import SocketClient, running_server
from tests.conftest import LiveServer, Orgs, make_orgs, wait_for
from tests.fakes.llm import FakeLLM, Reply, Text, ToolUse
from tests.fakes.mcp_tools import ToolServer


class Chat:
    def __init__(self, http: httpx.AsyncClient, orgs: Orgs, conv_id: str, agent_id: str, socket: SocketClient) -> None:
        self.http, self.orgs, self.conv_id, self.agent_id, self.socket = http, orgs, conv_id, agent_id, socket

    async def say(self, content: str) -> dict[str, Any]:
        r = await self.http.post(f"/api/v1/conversations/{self.conv_id}/messages", json={"content": content}, headers=self.orgs.a.headers)
        assert r.status_code == 201, r.text
        return r.json()["message"]  # type: ignore[no-any-return]

    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.socket.of("message.created") if m["role"] == "assistant"]

    async def wait_replies(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        await wait_for(lambda: len(self.replies()) >= count, timeout=timeout)
        return self.replies()


async def open_chat(http: httpx.AsyncClient, orgs: Orgs, llm: FakeLLM, sockets: Any, url: str, *, provider: str = "anthropic",
                    credential: bool = True, **config: Any) -> Chat:
    base_url = llm.url if provider == "anthropic" else f"{llm.url}/v1"
    body: dict[str, Any] = {"name": "Claude", "protocol": "custom", "provider": provider, "model": "model-1", **config}
    if credential:  # a key made for the fake provider's server, which the agent then calls
        r = await http.post("/api/v1/credentials", json={"name": "key", "provider": provider, "value": llm.api_key,
                                                         "base_url": base_url}, headers=orgs.a.headers)
        body["credential_id"], body["base_url"] = r.json()["credential"]["id"], base_url
    agent = (await http.post("/api/v1/agents", json=body, headers=orgs.a.headers)).json()["agent"]
    conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={}, headers=orgs.a.headers)).json()["conversation"]
    session = (await http.post("/api/v1/auth/login", json={"email": orgs.a.owner_email, "password": orgs.a.owner_password})).json()["token"]
    socket = await sockets(url, session)
    assert (await socket.call("subscribe", {"conversation_id": conv["id"]}))["success"]
    return Chat(http, orgs, conv["id"], agent["id"], socket)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_a_reply_streams_then_lands(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any,
                                          llm: FakeLLM, provider: str) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, provider=provider, system_prompt="Be brief.")
    llm.script(Reply([Text("Your order A-17 ships today.", chunks=5)], delay=0.06, prompt_tokens=30, completion_tokens=9))
    await chat.say("Where is my order A-17?")
    [reply] = await chat.wait_replies(1)
    await chat.socket.settle()
    deltas = chat.socket.of("message.delta")
    assert deltas and {d["message_id"] for d in deltas} == {reply["id"]}
    assert "".join(d["delta"] for d in deltas) == reply["content"] == "Your order A-17 ships today."
    assert len(deltas) >= 2  # streamed, not all at once
    typing = chat.socket.of("typing")
    assert typing[0]["typing"] is True and typing[0]["label"] == "Thinking..." and typing[-1]["typing"] is False
    order = [name for name, _ in chat.socket.events if name in ("message.delta", "message.created", "typing")]
    assert order.index("message.created", 1) > max(i for i, n in enumerate(order) if n == "message.delta")
    stored = await Message.get(id=reply["id"])
    assert stored.status == "complete" and stored.meta is not None
    assert stored.meta["usage"] == {"prompt_tokens": 30, "completion_tokens": 9} and stored.meta["model"] == "model-1"
    body = llm.requests[0].body
    assert body["model"] == "model-1"
    if provider == "anthropic":
        assert body["system"] == "Be brief." and body["messages"][-1]["content"][0]["text"] == "Where is my order A-17?"
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_deltas_are_coalesced(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("x" * 400, chunks=400)]))  # 400 deltas as fast as the fake can send them
    await chat.say("Go")
    [reply] = await chat.wait_replies(1)
    await chat.socket.settle()
    deltas = chat.socket.of("message.delta")
    assert "".join(d["delta"] for d in deltas) == reply["content"] and len(deltas) < 100


async def test_failures_become_a_readable_error_reply(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                       sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply(status=400))
    await chat.say("Hello?")
    [reply] = await chat.wait_replies(1)
    assert reply["status"] == "error" and "400" in reply["error"] and reply["content"].startswith("The agent could not answer")
    await wait_for(lambda: bool(chat.socket.of("agent.error")))
    [error] = chat.socket.of("agent.error")
    assert error["message_id"] == reply["id"] and error["agent_id"] == chat.agent_id
    # Transient failures are retried: two 503s, then the answer.
    llm.script(Reply(status=503), Reply(status=429, retry_after=0), Reply([Text("Back again.")]))
    await chat.say("And now?")
    replies = await chat.wait_replies(2)
    assert replies[1]["content"] == "Back again." and "status" not in replies[1]
    assert len(llm.requests) == 4


async def test_no_key_is_an_error_reply_not_silence(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                     sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, credential=False)
    await chat.say("Anyone there?")
    [reply] = await chat.wait_replies(1)
    assert reply["status"] == "error" and "no API key for anthropic at its own API" in reply["error"]
    assert llm.requests == []


async def test_stop_keeps_the_partial_reply_and_closes_the_upstream(live_server: LiveServer, live_orgs: Orgs,
                                                                     http: httpx.AsyncClient, sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("word " * 40, chunks=40)], delay=0.05))
    await chat.say("Tell me a long story")
    await wait_for(lambda: len(chat.socket.of("message.delta")) >= 2)
    # A client catching up mid-reply gets the text so far.
    synced = await chat.socket.call("sync", {"conversation_id": chat.conv_id, "after_seq": 0})
    assert synced["generating"]["message_id"] == chat.socket.of("message.delta")[0]["message_id"]
    assert synced["generating"]["content"].startswith("word")
    stopped = await chat.socket.call("generation.stop", {"conversation_id": chat.conv_id})
    assert stopped == {"success": True, "stopped": True}
    [reply] = await chat.wait_replies(1)
    assert reply["status"] == "stopped" and 0 < len(reply["content"]) < len("word " * 40)
    await wait_for(lambda: llm.aborted == 1)  # the provider's stream was closed
    again = await http.post(f"/api/v1/conversations/{chat.conv_id}/stop", headers=live_orgs.a.headers)
    assert again.json() == {"success": True, "stopped": False}
    assert (await http.post(f"/api/v1/conversations/{chat.conv_id}/stop", headers=live_orgs.b.headers)).status_code == 404


async def test_one_reply_at_a_time_in_order(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                            sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("First answer.")], delay=0.05), Reply([Text("Second answer.")]))
    await chat.say("One")
    await chat.say("Two")
    replies = await chat.wait_replies(2)
    assert [r["content"] for r in replies] == ["First answer.", "Second answer."]
    second = llm.requests[1].body["messages"]
    texts = [block["text"] for m in second for block in m["content"] if block.get("type") == "text"]
    assert texts[-2:] == ["First answer.", "Two"]  # the second reply saw the first


async def test_a_server_stopping_mid_reply_keeps_it_as_stopped(settings: Any, llm: FakeLLM, sockets: Any) -> None:
    async with running_server(settings) as server:
        orgs = await make_orgs()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            chat = await open_chat(http, orgs, llm, sockets, server.url)
            llm.script(Reply([Text("slow " * 50, chunks=50)], delay=0.05))
            await chat.say("Go slowly")
            await wait_for(lambda: len(chat.socket.of("message.delta")) >= 2)
            await chat.socket.close()
    # While it is down, a message arrives that nobody answers (as if it came in just before).
    from app.kernel.db import close_db, init_db
    from app.kernel.ids import new_id
    from app.kernel.timefmt import utcnow
    from app.models.chat import Conversation

    await init_db(settings)
    conversation = await Conversation.get(id=chat.conv_id)
    conversation.last_seq += 1
    await conversation.save()
    await Message.create(id=new_id("message"), conversation_id=chat.conv_id, seq=conversation.last_seq, role="user",
                         content="Are you still there?", user_id=orgs.a.owner_id, created_at=utcnow())
    await close_db()
    asked = len(llm.requests)
    llm.script(Reply([Text("Yes, back now.")]))
    async with running_server(settings):  # started again: the new message is answered, the stopped reply kept
        async def answered() -> bool:
            return await Message.filter(conversation_id=chat.conv_id, role="assistant").count() == 2

        await wait_for(answered)
        stopped, answer = await Message.filter(conversation_id=chat.conv_id, role="assistant").order_by("seq")
        assert stopped.status == "stopped" and stopped.content.startswith("slow")
        assert answer.content == "Yes, back now." and len(llm.requests) == asked + 1
        last = llm.requests[-1].body["messages"][-1]["content"][-1]["text"]
        assert last == "Are you still there?"


async def test_usage_by_day_and_by_agent(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any,
                                         llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("One.")], prompt_tokens=100, completion_tokens=20), Reply([Text("Two.")], prompt_tokens=150, completion_tokens=30))
    await chat.say("a")
    await chat.wait_replies(1)
    await chat.say("b")
    await chat.wait_replies(2)
    r = await http.get("/api/v1/usage", headers=live_orgs.a.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["messages"]["total"] == 2
    assert (data["token_usage"]["prompt"], data["token_usage"]["completion"], data["token_usage"]["total"]) == (250, 50, 300)
    [day] = data["token_usage"]["breakdown"]
    from app.kernel.timefmt import utcnow

    assert day == {"date": utcnow().date().isoformat(), "prompt": 250, "completion": 50, "total": 300}
    assert data["messages"]["breakdown"] == [{"date": day["date"], "count": 2}]
    by_agent = (await http.get("/api/v1/usage?breakdown=agent", headers=live_orgs.a.headers)).json()["data"]
    assert by_agent["token_usage"]["breakdown"] == [{"agent_id": chat.agent_id, "prompt": 250, "completion": 50, "total": 300}]
    assert r.json()["meta"]["requestId"] == r.headers["X-Request-Id"]
    # Another organization sees none of it; a window without replies is empty.
    other = (await http.get("/api/v1/usage", headers=live_orgs.b.headers)).json()["data"]
    assert other["messages"]["total"] == 0 and other["token_usage"]["breakdown"] == []
    old = (await http.get("/api/v1/usage?start_date=2020-01-01&end_date=2020-01-31", headers=live_orgs.a.headers)).json()["data"]
    assert old["token_usage"]["total"] == 0 and old["period"] == {"start": "2020-01-01T00:00:00Z", "end": "2020-01-31T23:59:59Z"}
    for query, field in (("breakdown=workflow", "breakdown"), ("start_date=yesterday", "start_date"),
                         ("start_date=2026-02-01&end_date=2026-01-01", "start_date"), ("start_date=2020-01-01&end_date=2026-01-01", "end_date"),
                         ("end_date=0001-01-05", "start_date")):
        bad = await http.get(f"/api/v1/usage?{query}", headers=live_orgs.a.headers)
        assert bad.status_code == 422 and field in bad.json()["error"]["details"], query


@pytest.fixture
async def tools() -> Any:
    server = await ToolServer().start()
    try:
        yield server
    finally:
        await server.stop()


async def test_tools_are_called_and_their_results_given_back(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                              sockets: Any, llm: FakeLLM, tools: ToolServer) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url,
                           mcp_servers=[{"url": tools.url, "headers": {"Authorization": "Bearer tool-token-7"}}])
    llm.script(Reply([Text("Let me look. "), ToolUse("lookup_order", {"number": "A-17"}, id="call_1")], prompt_tokens=40, completion_tokens=5),
               Reply([Text("It shipped on December 1.")], prompt_tokens=60, completion_tokens=8))
    await chat.say("Where is A-17?")
    [reply] = await chat.wait_replies(1)
    assert reply["content"] == "Let me look. It shipped on December 1."
    assert tools.calls == [("lookup_order", {"number": "A-17"})]
    assert all(h.get("authorization") == "Bearer tool-token-7" for h in tools.headers)
    offered = llm.requests[0].body["tools"]
    assert {t["name"] for t in offered} == {"lookup_order", "delete_record"}
    second = llm.requests[1].body["messages"]
    assert second[-1]["content"][0]["type"] == "tool_result" and "shipped on 2026-12-01" in second[-1]["content"][0]["content"]
    stored = await Message.get(id=reply["id"])
    assert stored.meta is not None and stored.meta["usage"] == {"prompt_tokens": 100, "completion_tokens": 13}
    [call] = stored.meta["tool_calls"]
    assert call["name"] == "lookup_order" and call["arguments"] == {"number": "A-17"} and "shipped" in call["result"]
    assert reply["metadata"]["tool_calls"][0]["name"] == "lookup_order"  # clients see it too
    assert reply["metadata"]["usage"] == {"prompt_tokens": 100, "completion_tokens": 13}


@pytest.mark.parametrize("approve", [True, False])
async def test_a_tool_waits_for_a_persons_approval(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                   sockets: Any, llm: FakeLLM, tools: ToolServer, approve: bool) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url,
                           mcp_servers=[{"url": tools.url, "require_approval": ["delete_record"]}])
    llm.script(Reply([ToolUse("delete_record", {"record_id": "r-9"}, id="call_9")]), Reply([Text("Done." if approve else "Understood.")]))
    await chat.say("Delete r-9")
    await wait_for(lambda: any(m.get("kind") == "interactive" for m in chat.socket.of("message.created")))
    question = next(m for m in chat.socket.of("message.created") if m.get("kind") == "interactive")
    assert question["role"] == "assistant" and "delete_record" in question["content"] and tools.calls == []
    session = (await http.post("/api/v1/auth/login", json={"email": live_orgs.a.owner_email, "password": live_orgs.a.owner_password})).json()["token"]
    answer = {"approved": True} if approve else {"approved": False, "message": "no"}
    r = await http.post(f"/api/v1/messages/{question['id']}/respond", json=answer, headers={"Authorization": f"Bearer {session}"})
    assert r.status_code == 200, r.text
    await wait_for(lambda: len(chat.replies()) == 2)  # the question, then the reply
    reply = chat.replies()[-1]
    assert reply["content"] == ("Done." if approve else "Understood.")
    assert tools.calls == ([("delete_record", {"record_id": "r-9"})] if approve else [])
    result = llm.requests[1].body["messages"][-1]["content"][0]
    assert result["is_error"] is (not approve)
    assert ("deleted" in result["content"]) if approve else ("declined" in result["content"])
    stored = await Message.get(id=reply["id"])
    assert stored.meta is not None and stored.meta["tool_calls"][0]["approved"] is approve


async def test_an_unanswered_approval_is_a_no(settings: Any, llm: FakeLLM, tools: ToolServer, sockets: Any) -> None:
    async with running_server(settings.with_overrides(agent_approval_timeout_seconds=1)) as server:
        orgs = await make_orgs()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            chat = await open_chat(http, orgs, llm, sockets, server.url, mcp_servers=[{"url": tools.url, "require_approval": True}])
            llm.script(Reply([ToolUse("lookup_order", {"number": "B-2"})]), Reply([Text("No answer, so I did not look.")]))
            await chat.say("Look up B-2")
            await wait_for(lambda: len(chat.replies()) == 2, timeout=15)
            assert chat.replies()[-1]["content"] == "No answer, so I did not look."
            assert tools.calls == [] and "declined" in llm.requests[1].body["messages"][-1]["content"][0]["content"]
            expired = [m for m in chat.socket.of("message.updated") if m.get("interaction", {}).get("status") == "expired"]
            assert expired


async def test_an_unreachable_tool_server_does_not_silence_the_agent(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                                     sockets: Any, llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, mcp_servers=[{"url": "http://127.0.0.1:9/mcp"}])
    llm.script(Reply([Text("I can still talk.")]))
    await chat.say("Hi")
    [reply] = await chat.wait_replies(1)
    assert reply["content"] == "I can still talk." and "tools" not in llm.requests[0].body
    stored = await Message.get(id=reply["id"])
    assert stored.meta is not None and stored.meta["unreachable_mcp_servers"][0].startswith("http://127.0.0.1:9/mcp")


async def test_history_keeps_tool_calls_with_their_results(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                           sockets: Any, llm: FakeLLM, tools: ToolServer) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, mcp_servers=[{"url": tools.url}])
    llm.script(Reply([ToolUse("lookup_order", {"number": "C-3"}, id="call_c3")]), Reply([Text("C-3 shipped.")]),
               Reply([Text("You're welcome.")]))
    await chat.say("Where is C-3?")
    await chat.wait_replies(1)
    await chat.say("Thanks")
    await chat.wait_replies(2)
    messages = llm.requests[2].body["messages"]
    kinds = [(m["role"], [b["type"] for b in m["content"]]) for m in messages]
    assert kinds == [("user", ["text"]), ("assistant", ["tool_use"]), ("user", ["tool_result"]), ("assistant", ["text"]),
                     ("user", ["text"])]
    assert messages[1]["content"][0]["id"] == "call_c3" and messages[2]["content"][0]["tool_use_id"] == "call_c3"
    assert messages[3]["content"][0]["text"] == "C-3 shipped." and messages[4]["content"][0]["text"] == "Thanks"


async def test_the_history_budget(settings: Any, llm: FakeLLM, sockets: Any) -> None:
    async with running_server(settings.with_overrides(agent_history_messages=3, agent_history_tokens=60)) as server:
        orgs = await make_orgs()
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            chat = await open_chat(http, orgs, llm, sockets, server.url)
            llm.script(*(Reply([Text(f"answer {i}")]) for i in range(3)))
            for i in range(3):
                await chat.say(f"question {i} " + "x" * (100 if i == 0 else 10))
                await chat.wait_replies(i + 1)
            last = llm.requests[2].body["messages"]
            texts = [b["text"] for m in last for b in m["content"]]
            # At most 3 messages, and the long first question (~30 tokens) no longer fits.
            assert texts[-1].startswith("question 2") and len(texts) <= 3 and not any("x" * 100 in t for t in texts)
            big = "y" * 1000  # bigger than the whole budget: the message answered is always sent
            llm.script(Reply([Text("ok")]))
            await chat.say(big)
            await chat.wait_replies(4)
            assert [b["text"] for m in llm.requests[3].body["messages"] for b in m["content"]] == [big]


async def test_a_stream_survives_a_reconnect(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any,
                                            llm: FakeLLM) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("part " * 30, chunks=30)], delay=0.04))
    await chat.say("Stream please")
    await wait_for(lambda: len(chat.socket.of("message.delta")) >= 2)
    await chat.socket.close()  # the phone loses its connection mid-reply
    session = (await http.post("/api/v1/auth/login", json={"email": live_orgs.a.owner_email, "password": live_orgs.a.owner_password})).json()["token"]
    again = await sockets(live_server.url, session)
    synced = await again.call("sync", {"conversation_id": chat.conv_id, "after_seq": 0})
    so_far = synced["generating"]["content"]
    assert so_far.startswith("part")
    await wait_for(lambda: any(m["role"] == "assistant" for m in again.of("message.created")))
    await again.settle()
    reply = next(m for m in again.of("message.created") if m["role"] == "assistant")
    after = "".join(d["delta"] for d in again.of("message.delta"))
    assert reply["id"] == synced["generating"]["message_id"] and after
    assert reply["content"] == "part " * 30 and reply["content"].endswith(after)
    assert len(so_far) + len(after) >= len(reply["content"])  # nothing missed between the two


async def test_without_tools_earlier_calls_are_told_in_words(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                             sockets: Any, llm: FakeLLM, tools: ToolServer) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, mcp_servers=[{"url": tools.url}])
    llm.script(Reply([ToolUse("lookup_order", {"number": "D-4"}, id="call_d4")]), Reply([Text("D-4 shipped.")]),
               Reply([Text("Still shipped.")]))
    await chat.say("Where is D-4?")
    await chat.wait_replies(1)
    await tools.stop()  # the tool server goes away: no tools are offered next time
    await chat.say("And now?")
    replies = await chat.wait_replies(2)
    assert replies[-1]["content"] == "Still shipped."
    body = llm.requests[2].body
    assert "tools" not in body
    assert {block["type"] for m in body["messages"] for block in m["content"]} == {"text"}
    assert any("lookup_order" in block["text"] for m in body["messages"] for block in m["content"])


async def test_stopping_during_an_approval_withdraws_the_question(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                                  sockets: Any, llm: FakeLLM, tools: ToolServer) -> None:
    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url, mcp_servers=[{"url": tools.url, "require_approval": True}])
    llm.script(Reply([Text("Checking. "), ToolUse("lookup_order", {"number": "E-5"})], prompt_tokens=12, completion_tokens=3))
    await chat.say("Look up E-5")
    await wait_for(lambda: any(m.get("kind") == "interactive" for m in chat.socket.of("message.created")))
    r = await http.post(f"/api/v1/conversations/{chat.conv_id}/stop", headers=live_orgs.a.headers)
    assert r.json()["stopped"] is True
    await wait_for(lambda: len(chat.replies()) == 2)
    reply = chat.replies()[-1]
    assert reply["status"] == "stopped" and reply["content"] == "Checking. "
    assert reply["metadata"]["usage"] == {"prompt_tokens": 12, "completion_tokens": 3}  # what it cost is kept
    await wait_for(lambda: any(m.get("interaction", {}).get("status") == "expired" for m in chat.socket.of("message.updated")))
    assert tools.calls == []


async def test_an_approval_recorded_by_another_process_is_seen(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient,
                                                               sockets: Any, llm: FakeLLM) -> None:
    """The runner waits for an approval in-process; an answer another gateway process wrote
    (here: straight into the table, waking nobody) is read back within seconds."""
    import time
    from datetime import timedelta

    from app.kernel.timefmt import utcnow
    from app.models.chat import Interaction
    from app.services import interactive, messages

    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    target = await messages.target_of(chat.conv_id)
    assert target is not None
    question, _ = await interactive.ask(target, [{"type": "boolean"}], expires_at=utcnow() + timedelta(minutes=5))
    waiting = asyncio.create_task(interactive.wait_settled(question.id, timeout=30))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await Interaction.filter(message_id=question.id).update(status="responded", response={"approved": True, "message": None})
    settled = await waiting
    assert settled is not None and settled.status == "responded" and time.monotonic() - started < 5
