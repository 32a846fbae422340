"""The MCP server at /mcp/v1, driven by the official mcp client over HTTP against the real
server: every tool, the same answers as REST, scopes, isolation, auth, SSE, and an approval
answered by a person through the socket while the MCP call waits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from app.models.core import Organization
from app.services import api_keys
from tests.chat.conftest import http, live_orgs, receiver, sockets  # noqa: F401 - shared fixtures
from tests.chat.test_realtime import add_member, bearer, new_conversation
from tests.conftest import EventRecorder, LiveServer, Orgs, wait_for

SEED_TOOLS = {
    "database_list": [], "database_get": ["database_id"], "database_create": ["name"],
    "database_update": ["database_id"], "database_delete": ["database_id"],
    "table_list": ["database_id"], "table_get": ["table_id"], "table_create": ["database_id", "name"],
    "table_update": ["table_id"], "table_delete": ["table_id"],
    "field_list": ["table_id"], "field_get": ["field_id"], "field_create": ["table_id", "name", "field_type"],
    "field_update": ["field_id"], "field_delete": ["field_id"],
    "entry_list": ["table_id"], "entry_get": ["entry_id"], "entry_create": ["table_id"],
    "entry_update": ["entry_id", "values"], "entry_delete": ["entry_id"],
    "entry_query": ["table_id"], "entry_bulk": ["table_id", "operations"],
    "entry_aggregate": ["table_id", "function"],
    "entry_notes_get": ["entry_id"], "entry_notes_update": ["entry_id", "notes"], "entry_notes_append": ["entry_id", "nodes"],
}
CHAT_TOOLS = {
    "conversation_list": ["agent_id"], "conversation_get": ["conversation_id"], "conversation_messages": ["conversation_id"],
    "message_send": ["conversation_id", "content", "role"], "ask_approval": ["conversation_id", "elements"],
    "get_answer": ["message_id"], "push_send": ["email", "title", "body"], "typing_set": ["agent_id", "conversation_id", "typing"],
}


@asynccontextmanager
async def mcp(url: str, key: str) -> AsyncIterator[ClientSession]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        async with streamable_http_client(f"{url}/mcp/v1", http_client=client) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session


async def call(session: ClientSession, tool: str, /, **arguments: Any) -> Any:
    result = await session.call_tool(tool, arguments)
    body = json.loads(result.content[0].text)
    assert not result.is_error, (tool, body)
    return body


async def refused(session: ClientSession, tool: str, /, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert result.is_error, (tool, result.content[0].text)
    return json.loads(result.content[0].text)["error"]  # type: ignore[no-any-return]


async def key_with(org_id: str, *scopes: str) -> str:
    org = await Organization.get(id=org_id)
    return await api_keys.create_key_record(org, name="mcp", scopes=list(scopes), user=None)


async def test_tools_and_their_schemas(live_server: LiveServer, live_orgs: Orgs) -> None:
    async with mcp(live_server.url, live_orgs.a.api_key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == set(SEED_TOOLS) | set(CHAT_TOOLS)
    for name, required in (SEED_TOOLS | CHAT_TOOLS).items():
        assert sorted(tools[name].input_schema.get("required", [])) == sorted(required), name
    query = tools["entry_query"].input_schema["properties"]
    assert {"table_id", "filters", "sort", "search", "limit", "offset", "timezone"} <= set(query)
    assert query["limit"]["anyOf"][0]["maximum"] == 1000  # the REST route's bound, from the same model
    assert tools["entry_list"].input_schema["properties"]["limit"]["maximum"] == 200
    assert tools["entry_get"].annotations.read_only_hint is True
    assert tools["entry_delete"].annotations.destructive_hint is True


async def test_every_data_tool_answers_as_rest_does(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient) -> None:
    h = live_orgs.a.headers
    async with mcp(live_server.url, live_orgs.a.api_key) as s:
        db = await call(s, "database_create", name="CRM", description="Customers")
        assert db == (await http.get(f"/api/v1/databases/{db['id']}", headers=h)).json()["data"]
        assert (await call(s, "database_update", database_id=db["id"], color="#ff0000"))["color"] == "#ff0000"
        table = await call(s, "table_create", database_id=db["id"], name="Deals")
        assert table["fields"][0]["name"] == "Name"
        for sample in (await call(s, "entry_list", table_id=table["id"]))["data"]:  # a new table's examples
            assert await call(s, "entry_delete", entry_id=sample["id"]) == {"deleted": True, "entry_id": sample["id"]}
        got = await call(s, "database_get", database_id=db["id"])
        assert [t["id"] for t in got["tables"]] == [table["id"]]
        assert (await call(s, "database_list"))["meta"]["total"] == 1
        assert (await call(s, "table_update", table_id=table["id"], name="Pipeline"))["name"] == "Pipeline"
        assert (await call(s, "table_list", database_id=db["id"]))["data"][0]["name"] == "Pipeline"
        amount = await call(s, "field_create", table_id=table["id"], name="Amount", field_type="number")
        stage = await call(s, "field_create", table_id=table["id"], name="Stage", field_type="select",
                           config={"options": [{"label": "Open"}, {"label": "Won"}]})
        assert (await call(s, "field_get", field_id=amount["id"]))["type"] == "number"
        assert (await call(s, "field_update", field_id=amount["id"], name="Value"))["name"] == "Value"
        assert [f["name"] for f in (await call(s, "field_list", table_id=table["id"]))["data"]][-2:] == ["Value", "Stage"]
        assert (await call(s, "table_get", table_id=table["id"])) == (await http.get(f"/api/v1/tables/{table['id']}", headers=h)).json()["data"]

        first = await call(s, "entry_create", table_id=table["id"], values={"Name": "Acme", "Value": 100, "Stage": "Open"})
        assert first == (await http.get(f"/api/v1/entries/{first['id']}", headers=h)).json()["data"]
        bulk = await call(s, "entry_bulk", table_id=table["id"], operations=[
            {"action": "create", "values": {"Name": "Globex", "Value": 250, "Stage": "Won"}},
            {"action": "create", "values": {"Name": "Initech", "Value": 50, "Stage": "Won"}},
            {"action": "create", "values": {"Value": "lots"}},
        ])
        assert (bulk["succeeded"], bulk["failed"]) == (2, 1)
        updated = await call(s, "entry_update", entry_id=first["id"], values={"Stage": "Won"})
        assert updated["values"][stage["id"]] == stage["config"]["options"][1]["id"]
        assert (await call(s, "entry_get", entry_id=first["id"])) == updated
        won = await call(s, "entry_query", table_id=table["id"], filters=[{"field": "Stage", "op": "is", "value": "Won"}],
                         sort=[{"field": "Value", "direction": "desc"}], limit=2)
        rest = (await http.post(f"/api/v1/tables/{table['id']}/entries/query", json={
            "filters": [{"field": "Stage", "op": "is", "value": "Won"}], "sort": [{"field": "Value", "direction": "desc"}], "limit": 2,
        }, headers=h)).json()
        assert won == rest and [e["values"][amount["id"]] for e in won["data"]] == [250, 100]
        assert (await call(s, "entry_list", table_id=table["id"], limit=2))["meta"]["total"] == 3
        total = await call(s, "entry_aggregate", table_id=table["id"], function="sum", field_id="Value")
        assert total["result"] == 400
        assert (await call(s, "entry_aggregate", table_id=table["id"], function="count"))["result"] == 3

        assert (await call(s, "entry_notes_get", entry_id=first["id"]))["has_notes"] is False
        doc = {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Called Jo"}]}]}
        assert (await call(s, "entry_notes_update", entry_id=first["id"], notes=doc))["has_notes"] is True
        appended = await call(s, "entry_notes_append", entry_id=first["id"],
                              nodes=[{"type": "paragraph", "content": [{"type": "text", "text": "Sent quote"}]}])
        assert len(appended["notes"]["content"]) == 2
        assert (await http.get(f"/api/v1/entries/{first['id']}/notes", headers=h)).json()["data"] == appended

        assert await call(s, "entry_delete", entry_id=first["id"]) == {"deleted": True, "entry_id": first["id"]}
        assert (await http.get(f"/api/v1/entries/{first['id']}", headers=h)).status_code == 404
        await call(s, "field_delete", field_id=stage["id"])
        await call(s, "table_delete", table_id=table["id"])
        await call(s, "database_delete", database_id=db["id"])
        assert (await http.get(f"/api/v1/databases/{db['id']}", headers=h)).status_code == 404

        # what every face refuses: a NUL character (PostgreSQL cannot store it)
        nul = await refused(s, "database_create", name="bad\u0000name")
        assert nul["code"] == "validation_failed"
        # the REST route's validation, as a tool error naming the argument
        bad = await refused(s, "entry_query", table_id="tb_x", limit=5000)
        assert bad["code"] == "validation_failed" and "limit" in bad["details"]
        missing = await refused(s, "table_create", name="No database")
        assert missing["code"] == "validation_failed" and "database_id" in missing["details"]
        assert (await refused(s, "no_such_tool"))["code"] == "unknown_tool"


async def test_scopes_are_tool_errors_naming_the_scope(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient) -> None:
    db = (await http.post("/api/v1/databases", json={"name": "D"}, headers=live_orgs.a.headers)).json()["data"]
    reader = await key_with(live_orgs.a.id, "data.tables:read")
    async with mcp(live_server.url, reader) as s:
        err = await refused(s, "database_list")
        assert err["code"] == "insufficient_permissions" and err["details"] == {"required_scope": "data.databases:read"}
        assert "data.databases:read" in err["message"]
        err = await refused(s, "table_create", database_id=db["id"], name="T")
        assert err["details"] == {"required_scope": "data.tables:write"}
        assert (await call(s, "table_list", database_id=db["id"]))["meta"]["total"] == 0
        assert (await refused(s, "message_send", conversation_id="conv_x", content="hi", role="assistant"))["details"] == {
            "required_scope": "conversations:write"}
    # ask_approval with a wait needs both rights before anything is sent
    agent = (await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook"},
                             headers=live_orgs.a.headers)).json()["agent"]
    conv = await new_conversation(http, live_orgs.a.headers, agent["id"])
    writer = await key_with(live_orgs.a.id, "conversations:write")
    async with mcp(live_server.url, writer) as s:
        err = await refused(s, "ask_approval", conversation_id=conv["id"], elements=[{"type": "boolean"}], wait_seconds=5)
        assert err["details"] == {"required_scope": "conversations:read"}
        sent = await call(s, "ask_approval", conversation_id=conv["id"], elements=[{"type": "boolean"}])
        assert sent["status"] == "pending"
    history = (await http.get(f"/api/v1/conversations/{conv['id']}/messages", headers=live_orgs.a.headers)).json()["messages"]
    assert [m["id"] for m in history] == [sent["message_id"]]  # the refused one was never sent
    assert (await http.get(f"/api/v1/databases/{db['id']}/tables", headers=live_orgs.a.headers)).json()["data"] == []


async def test_another_organizations_ids_are_not_found(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient) -> None:
    a = live_orgs.a.headers
    db = (await http.post("/api/v1/databases", json={"name": "Secret"}, headers=a)).json()["data"]
    table = (await http.post(f"/api/v1/databases/{db['id']}/tables", json={"name": "T"}, headers=a)).json()["data"]
    entry = (await http.post(f"/api/v1/tables/{table['id']}/entries", json={"values": {"Name": "x"}}, headers=a)).json()["data"]
    agent = (await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook"}, headers=a)).json()["agent"]
    conv = await new_conversation(http, a, agent["id"])
    async with mcp(live_server.url, live_orgs.b.api_key) as s:
        for name, args in (
            ("database_get", {"database_id": db["id"]}), ("table_get", {"table_id": table["id"]}),
            ("entry_get", {"entry_id": entry["id"]}), ("entry_update", {"entry_id": entry["id"], "values": {"Name": "y"}}),
            ("entry_query", {"table_id": table["id"]}), ("entry_notes_get", {"entry_id": entry["id"]}),
            ("field_list", {"table_id": table["id"]}), ("database_delete", {"database_id": db["id"]}),
            ("conversation_get", {"conversation_id": conv["id"]}), ("conversation_list", {"agent_id": agent["id"]}),
            ("message_send", {"conversation_id": conv["id"], "content": "x", "role": "assistant"}),
            ("ask_approval", {"conversation_id": conv["id"], "elements": [{"type": "boolean"}]}),
        ):
            assert (await refused(s, name, **args))["code"] == "not_found", name
        # ids no object could have are refused as such, never an internal error
        long = "x" * 300
        for name, args in (
            ("conversation_get", {"conversation_id": long}), ("conversation_list", {"agent_id": long}),
            ("entry_get", {"entry_id": long}), ("get_answer", {"message_id": long}),
            ("typing_set", {"agent_id": long, "conversation_id": long, "typing": True}),
            ("message_send", {"conversation_id": conv["id"], "content": "x", "role": "assistant", "attachments": [long]}),
        ):
            assert (await refused(s, name, **args))["code"] in ("not_found", "validation_failed"), name
    assert (await http.get(f"/api/v1/entries/{entry['id']}", headers=a)).json()["data"]["values"] == entry["values"]


async def test_only_api_keys_get_in(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient) -> None:
    _, session_token = await add_member(http, live_orgs.a.headers, "person@acme.example")
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer ak_wrong"}, bearer(session_token)):
        r = await http.post("/mcp/v1", json=rpc, headers=accept | headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_required"
        assert r.headers["www-authenticate"].startswith("Bearer")
    for method in ("GET", "DELETE"):  # stateless: no stream to open, no session to end
        r = await http.request(method, "/mcp/v1", headers={"Accept": "text/event-stream"} | live_orgs.a.headers)
        assert r.status_code == 405 and r.headers["allow"] == "POST"
    ok = await http.post("/mcp/v1", json=rpc, headers=accept | live_orgs.a.headers)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/json")
    assert len(ok.json()["result"]["tools"]) == len(SEED_TOOLS) + len(CHAT_TOOLS)
    # x-api-key works as on REST; a client that prefers SSE gets a stream
    sse = await http.post("/mcp/v1", json=rpc, headers={"Accept": "text/event-stream", "x-api-key": live_orgs.a.api_key})
    assert sse.status_code == 200 and sse.headers["content-type"].startswith("text/event-stream")
    data = next(line[5:] for line in sse.text.splitlines() if line.startswith("data:"))
    assert len(json.loads(data)["result"]["tools"]) == len(SEED_TOOLS) + len(CHAT_TOOLS)


async def test_ask_approval_waits_for_a_person(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any, events: EventRecorder
) -> None:
    h = live_orgs.a.headers
    agent = (await http.post("/api/v1/agents", json={"name": "Ops", "webhook_url": "http://127.0.0.1:9/hook"}, headers=h)).json()["agent"]
    user_id, token = await add_member(http, h, "manager@acme.example")
    conv = await new_conversation(http, bearer(token), agent["id"])
    phone = await sockets(live_server.url, token)
    elements = [{"type": "text", "text": "Refund $120 to Jo?"}, {"type": "boolean", "approve_label": "Refund", "reject_label": "Keep"}]

    async with mcp(live_server.url, live_orgs.a.api_key) as s:
        asking = asyncio.create_task(call(s, "ask_approval", conversation_id=conv["id"], elements=elements, wait_seconds=20))
        await wait_for(lambda: phone.of("message.created"), timeout=10)
        question = phone.of("message.created")[0]
        assert question["kind"] == "interactive" and not asking.done()
        ack = await phone.call("interactive.respond", {"message_id": question["id"], "approved": True, "message": "ok"})
        assert ack["success"] is True
        answered = await asyncio.wait_for(asking, 10)
        assert answered["status"] == "responded" and answered["message_id"] == question["id"]
        assert answered["answer"] == {"approved": True, "message": "ok"}
        assert answered["responded_by"]["user_id"] == user_id
        assert (await call(s, "get_answer", message_id=question["id"]))["answer"] == answered["answer"]

        # not answered in time: the pending message id, then the answer through get_answer
        pending = await call(s, "ask_approval", conversation_id=conv["id"], wait_seconds=0,
                             elements=[{"type": "buttons", "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}])
        assert pending["status"] == "pending"
        waiting = asyncio.create_task(call(s, "get_answer", message_id=pending["message_id"], wait_seconds=20))
        await wait_for(lambda: len(phone.of("message.created")) == 2, timeout=10)
        await phone.call("interactive.respond", {"message_id": pending["message_id"], "selection": "b"})
        assert (await asyncio.wait_for(waiting, 10))["answer"] == {"selection": "b"}

        # the other chat tools
        listed = await call(s, "conversation_list", agent_id=agent["id"])
        assert [c["id"] for c in listed["conversations"]] == [conv["id"]]
        assert (await call(s, "conversation_get", conversation_id=conv["id"]))["conversation"]["id"] == conv["id"]
        sent = await call(s, "message_send", conversation_id=conv["id"], content="Refunded.", role="assistant",
                          external_message_id="run-1")
        dup = await refused(s, "message_send", conversation_id=conv["id"], content="Refunded.", role="assistant", external_message_id="run-1")
        assert dup["code"] == "duplicate_message"
        history = await call(s, "conversation_messages", conversation_id=conv["id"])
        assert [m["id"] for m in history["messages"]][-1] == sent["message"]["id"] and len(history["messages"]) == 3
        assert (await call(s, "typing_set", agent_id=agent["id"], conversation_id=conv["id"], typing=True, label="Checking"))["success"]
        typing = await events.wait_for("typing", lambda p: p.get("is_typing") is True or p.get("typing") is True)
        assert typing.get("label") == "Checking"
        pushed = await call(s, "push_send", email="manager@acme.example", title="Refund", body="Done")
        assert pushed["total_devices"] == 0 and pushed["email"] == "manager@acme.example"
        bad = await refused(s, "push_send", email="manager@acme.example", title="", body="x", priority="loud")
        assert set(bad["details"]) == {"title", "priority"}
        assert (await refused(s, "ask_approval", conversation_id=conv["id"], elements=elements, wait_seconds=61))["code"] == "validation_failed"

