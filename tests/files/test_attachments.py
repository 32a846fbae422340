"""Files on messages: a person sends a file (socket ``message.send`` or REST), the webhook
agent's automation receives it with a download URL, and sends a report back by originate."""

from __future__ import annotations

from typing import Any

import httpx

from tests.chat.test_realtime import add_member, bearer, new_conversation
from tests.conftest import LiveServer, Orgs, wait_for
from tests.files.conftest import FileTable, upload_file
from tests.fakes.webhook_receiver import WebhookReceiver


async def test_a_file_travels_from_a_person_to_the_automation_and_back(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, receiver: WebhookReceiver, sockets: Any
) -> None:
    h = live_orgs.a.headers
    agent = (await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": receiver.url}, headers=h)).json()["agent"]
    receiver.secrets.append(agent["signing_secret"])
    _, token = await add_member(http, h, "pat@acme.example")
    conv = await new_conversation(http, bearer(token), agent["id"])
    phone = await sockets(live_server.url, token)
    await phone.call("subscribe", {"conversation_id": conv["id"]})

    # a member uploads an attachment (no entry, no field) with their session
    photo = await upload_file(http, bearer(token), None, b"\x89PNG" + b"p" * 500, filename="receipt.png", content_type="image/png")
    assert photo["entry"] is None
    # another member cannot send it (nor see it)
    _, other = await add_member(http, h, "kim@acme.example")
    theirs = await new_conversation(http, bearer(other), agent["id"])
    stolen = await http.post(f"/api/v1/conversations/{theirs['id']}/messages", json={"content": "x", "attachments": [photo["id"]]},
                             headers=bearer(other))
    assert stolen.status_code == 422
    ack = await phone.call("message.send", {"conversation_id": conv["id"], "content": "", "attachments": [photo["id"]]})
    assert ack["success"] is True, ack
    sent = ack["message"]["attachments"]
    assert [(a["id"], a["filename"], a["content_type"], a["size_bytes"]) for a in sent] == [(photo["id"], "receipt.png", "image/png", 504)]
    await wait_for(lambda: phone.of("message.created"))
    assert phone.of("message.created")[0]["attachments"][0]["id"] == photo["id"]

    await receiver.wait_for(lambda r: len(r.received) == 1)
    body = receiver.received[0].json
    assert receiver.received[0].signed_with
    (attached,) = body["attachments"]
    assert attached["filename"] == "receipt.png" and attached["size_bytes"] == 504
    got = await http.get(attached["download_url"])  # what the automation fetches
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG")

    # the automation sends a report back; links point where the request came in
    report = await upload_file(http, h, None, b"%PDF report", filename="report.pdf")
    via = f"http://localhost:{live_server.port}"
    r = await http.post(f"{via}/api/v1/conversations/{conv['id']}/originate",
                        json={"content": "Your report", "role": "assistant", "attachments": [report["id"]]}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["message"]["attachments"][0]["filename"] == "report.pdf"
    assert r.json()["message"]["attachments"][0]["download_url"].startswith(via + "/files/blob/")
    await wait_for(lambda: len(phone.of("message.created")) == 2)
    url = phone.of("message.created")[1]["attachments"][0]["download_url"]
    assert (await http.get(url)).content == b"%PDF report"

    # the agent endpoint of connection-info takes them too
    r = await http.post(f"/api/v1/agents/{agent['id']}/messages",
                        json={"conversation_id": conv["id"], "content": "Same report", "attachments": [report["id"]]}, headers=h)
    assert r.status_code == 201 and r.json()["message"]["attachments"][0]["id"] == report["id"]

    # history signs fresh URLs; a file deleted since shows none
    assert (await http.delete(f"/api/v1/files/{report['id']}", headers=h)).status_code == 204
    history = (await http.get(f"/api/v1/conversations/{conv['id']}/messages", headers=bearer(token))).json()["messages"]
    assert history[0]["attachments"][0]["download_url"].startswith(live_server.url + "/files/blob/")
    assert [m["attachments"][0]["download_url"] for m in history[1:]] == [None, None]
    assert history[1]["attachments"][0]["filename"] == "report.pdf"


async def test_only_confirmed_files_of_the_organization(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any) -> None:
    a, b = live_orgs.a.headers, live_orgs.b.headers
    agent = (await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook"}, headers=a)).json()["agent"]
    conv = await new_conversation(http, a, agent["id"])
    theirs = await upload_file(http, b, None, b"not yours", filename="b.txt", content_type="text/plain")
    pending = (await http.post("/api/v1/files/upload", json={"filename": "p.txt", "content_type": "text/plain", "size_bytes": 3}, headers=a)).json()["data"]
    for attachments in ([theirs["id"]], [pending["file_id"]], ["file_nope"], "file_x", [1], [f"file_{i}" for i in range(21)]):
        r = await http.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "hi", "attachments": attachments}, headers=a)
        assert r.status_code == 422 and any(k.startswith("attachments") for k in r.json()["error"]["details"]), (attachments, r.text)
    empty = await http.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": " "}, headers=a)
    assert empty.status_code == 422  # no text and no file
    socket = await sockets(live_server.url, live_orgs.a.api_key)
    refused = await socket.call("message.send", {"conversation_id": conv["id"], "content": "x", "attachments": [theirs["id"]]})
    assert refused["error"]["code"] == "validation_failed"
    history = (await http.get(f"/api/v1/conversations/{conv['id']}/messages", headers=a)).json()["messages"]
    assert history == []  # nothing was stored


async def test_attachment_uploads_need_conversation_rights(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    from app.models.core import Organization
    from app.services import api_keys

    # an API key uploads with the contract's files:write, attachments included
    key = await api_keys.create_key_record(await Organization.get(id=live_orgs.a.id), name="c", scopes=["conversations:write"], user=None)
    r = await http.post("/api/v1/files/upload", json={"filename": "a.txt", "content_type": "text/plain", "size_bytes": 1},
                        headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403 and r.json()["error"]["details"] == {"required_scope": "files:write"}
    _, token = await add_member(http, live_orgs.a.headers, "viewer@acme.example")
    # a member may attach files to messages but not write to tables
    denied = await http.post("/api/v1/files/upload", json={"entry_id": table_a.entry_id, "field_id": table_a.field_id,
                                                           "filename": "a.txt", "content_type": "text/plain", "size_bytes": 1},
                             headers=bearer(token))
    assert denied.status_code == 403


async def test_a_custom_agent_is_told_which_files_were_sent(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, sockets: Any, llm: Any
) -> None:
    from tests.chat.test_agent_runner import open_chat
    from tests.fakes.llm import Reply, Text

    chat = await open_chat(http, live_orgs, llm, sockets, live_server.url)
    llm.script(Reply([Text("Got your invoice.")]))
    invoice = await upload_file(http, live_orgs.a.headers, None, b"%PDF invoice", filename="invoice.pdf")
    r = await http.post(f"/api/v1/conversations/{chat.conv_id}/messages", json={"content": "", "attachments": [invoice["id"]]},
                        headers=live_orgs.a.headers)
    assert r.status_code == 201, r.text
    await chat.wait_replies(1)
    said = llm.requests[0].body["messages"][-1]["content"][0]["text"]
    assert said == "[files attached: invoice.pdf (application/pdf, 12 bytes)]"
