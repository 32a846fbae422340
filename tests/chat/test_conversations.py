"""Conversations and messages over REST: shapes, visibility, seq, dedup, bad input."""

from __future__ import annotations

import asyncio

import pytest

from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import EventRecorder, Orgs, add_member


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def conv_rooms(conv: dict, owner_id: str) -> list[str]:
    """Where a conversation's events go: its room, and every connection of its owner."""
    return [f"conv:{conv['id']}", f"user:{owner_id}"]


async def test_create_conversation_shapes_and_owner(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"], title="Support Request")
    assert conv["user_id"] == orgs.a.owner_id  # the key's creator by default
    assert conv["agent_id"] == agent["id"] and conv["title"] == "Support Request"
    assert conv["status"] == "active" and conv["created_at"].endswith("Z")

    member_id, _ = await add_member(client, orgs.a, "m@acme.example")
    theirs = await make_conversation(client, orgs.a.headers, agent["id"], user_id=member_id)
    assert theirs["user_id"] == member_id

    # A user of another organization (or an unknown one) is refused.
    for user_id in [orgs.b.owner_id, "usr_nope"]:
        response = await client.post(
            f"/api/v1/agents/{agent['id']}/conversations/create", json={"user_id": user_id}, headers=orgs.a.headers
        )
        assert response.status_code == 422
        assert "user_id" in (await response.get_json())["error"]["details"]

    got = await client.get(f"/api/v1/conversations/{conv['id']}", headers=orgs.a.headers)
    assert (await got.get_json())["conversation"]["id"] == conv["id"]

    # Each creation is announced to its owner's connections and the organization's; the
    # refused ones are not announced at all.
    assert events.all == [
        ("conversation.created", [f"user:{orgs.a.owner_id}", f"org:{orgs.a.id}"], conv),
        ("conversation.created", [f"user:{member_id}", f"org:{orgs.a.id}"], theirs),
    ]


async def test_members_see_only_their_own_admins_see_all(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers)
    _, member = await add_member(client, orgs.a, "m@acme.example")
    _, other = await add_member(client, orgs.a, "o@acme.example")
    _, admin = await add_member(client, orgs.a, "a@acme.example", role="admin")
    mine = await make_conversation(client, auth(member), agent["id"], title="mine")
    theirs = await make_conversation(client, auth(other), agent["id"], title="theirs")

    listed = await (await client.get(f"/api/v1/agents/{agent['id']}/conversations", headers=auth(member))).get_json()
    assert [c["id"] for c in listed["conversations"]] == [mine["id"]]
    assert (await client.get(f"/api/v1/conversations/{theirs['id']}", headers=auth(member))).status_code == 404
    assert (await client.get(f"/api/v1/conversations/{theirs['id']}/messages", headers=auth(member))).status_code == 404
    sent = await client.post(f"/api/v1/conversations/{theirs['id']}/messages", json={"content": "hi"}, headers=auth(member))
    assert sent.status_code == 404

    as_admin = await (await client.get(f"/api/v1/agents/{agent['id']}/conversations", headers=auth(admin))).get_json()
    assert {c["id"] for c in as_admin["conversations"]} == {mine["id"], theirs["id"]}

    # A member cannot create a conversation for somebody else.
    response = await client.post(
        f"/api/v1/agents/{agent['id']}/conversations/create", json={"user_id": orgs.a.owner_id}, headers=auth(member)
    )
    assert response.status_code == 403


async def test_listing_is_newest_first_and_paginated(client, orgs: Orgs) -> None:
    agent = await make_agent(client, orgs.a.headers)
    made = [await make_conversation(client, orgs.a.headers, agent["id"], title=f"c{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        url = f"/api/v1/agents/{agent['id']}/conversations?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(url, headers=orgs.a.headers)).get_json()
        seen += [c["id"] for c in body["conversations"]]
        cursor = body["meta"]["next_cursor"]
        if not cursor:
            break
    assert seen == [c["id"] for c in reversed(made)]
    bad = await client.get(f"/api/v1/agents/{agent['id']}/conversations?cursor=%%%", headers=orgs.a.headers)
    assert bad.status_code == 422


async def test_messages_seq_history_and_bad_input(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"
    user = await client.post(f"{base}/messages", json={"content": "Hello, I need help"}, headers=orgs.a.headers)
    assert user.status_code == 201
    umsg = (await user.get_json())["message"]
    assert umsg["role"] == "user" and umsg["seq"] == 1 and umsg["user_id"] == orgs.a.owner_id

    reply = await client.post(
        f"{base}/originate",
        json={"content": "Hi! How can I help you today?", "role": "assistant", "external_message_id": "msg-12345"},
        headers=orgs.a.headers,
    )
    body = await reply.get_json()
    assert reply.status_code == 201 and body["success"] is True
    assert {k: body["message"][k] for k in ("content", "role", "seq")} == {
        "content": "Hi! How can I help you today?",
        "role": "assistant",
        "seq": 2,
    }
    assert body["message"]["id"].startswith("msg_")
    rooms = conv_rooms(conv, orgs.a.owner_id)
    assert [e for e in events.all if e[0] == "message.created"] == [
        ("message.created", rooms, umsg),
        ("message.created", rooms, body["message"]),
    ]

    dup = await client.post(
        f"{base}/originate", json={"content": "again", "role": "assistant", "external_message_id": "msg-12345"}, headers=orgs.a.headers
    )
    assert dup.status_code == 409
    error = (await dup.get_json())["error"]
    assert error["code"] == "duplicate_message" and error["details"]["message_id"] == body["message"]["id"]

    for payload in [
        {"content": "x", "role": "user"},
        {"content": "x"},
        {"content": "", "role": "assistant"},
        {"content": "y" * 32_769, "role": "assistant"},
        {"content": 5, "role": "assistant"},
    ]:
        response = await client.post(f"{base}/originate", json=payload, headers=orgs.a.headers)
        assert response.status_code == 422, payload
    assert (await client.post(f"{base}/messages", json={"content": ""}, headers=orgs.a.headers)).status_code == 422
    assert (await client.post(f"{base}/messages", json={}, headers=orgs.a.headers)).status_code == 422
    assert len(events.of("message.created")) == 2  # nothing refused was announced
    longest = await client.post(f"{base}/originate", json={"content": "z" * 32_768, "role": "assistant"}, headers=orgs.a.headers)
    assert longest.status_code == 201 and (await longest.get_json())["message"]["seq"] == 3

    for _ in range(4):
        await client.post(f"{base}/messages", json={"content": "more"}, headers=orgs.a.headers)
    page = await (await client.get(f"{base}/messages?after_seq=2&limit=3", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in page["messages"]] == [3, 4, 5] and page["meta"]["has_more"] is True
    page = await (await client.get(f"{base}/messages?before_seq=7&limit=2", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in page["messages"]] == [5, 6]
    everything = await (await client.get(f"{base}/messages", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in everything["messages"]] == list(range(1, 8))
    assert (await client.get(f"{base}/messages?limit=201", headers=orgs.a.headers)).status_code == 422
    # Every stored message was announced once, in order, as the history shows it.
    assert events.of("message.created") == everything["messages"]
    assert events.rooms_of("message.created") == [rooms] * 7


async def test_a_message_has_one_shape_over_rest_and_the_socket(client, orgs: Orgs, events: EventRecorder) -> None:
    """The REST answer, the history and the ``message.created`` event of a message are equal."""
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"
    sent = await client.post(f"{base}/messages", json={"content": "Where is my order?"}, headers=orgs.a.headers)
    user_message = (await sent.get_json())["message"]
    replied = await client.post(
        f"{base}/originate", json={"content": "On its way.", "role": "assistant", "external_message_id": "ext-9"}, headers=orgs.a.headers
    )
    reply = (await replied.get_json())["message"]
    history = (await (await client.get(f"{base}/messages", headers=orgs.a.headers)).get_json())["messages"]

    # Announced after the commit and before the answer: recorded by the time it returns.
    assert events.of("message.created") == [user_message, reply] == history
    assert set(reply) == {"id", "conversation_id", "seq", "role", "content", "user_id", "external_message_id", "created_at"}
    assert reply["external_message_id"] == "ext-9" and reply["user_id"] is None
    assert user_message["user_id"] == orgs.a.owner_id and user_message["external_message_id"] is None


async def test_disabled_agent_and_unknown_ids(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    await client.patch(f"/api/v1/agents/{agent['id']}", json={"enabled": False}, headers=orgs.a.headers)
    for path, payload in [
        (f"/api/v1/agents/{agent['id']}/conversations/create", {}),
        (f"/api/v1/conversations/{conv['id']}/messages", {"content": "hi"}),
        (f"/api/v1/conversations/{conv['id']}/originate", {"content": "hi", "role": "assistant"}),
    ]:
        response = await client.post(path, json=payload, headers=orgs.a.headers)
        assert response.status_code == 409, path
        assert (await response.get_json())["error"]["code"] == "agent_disabled"
    for path in ["/api/v1/agents/agt_nope/conversations", "/api/v1/conversations/conv_nope", "/api/v1/conversations/conv_nope/messages"]:
        assert (await client.get(path, headers=orgs.a.headers)).status_code == 404
    # Another organization's conversation is a 404 everywhere.
    for method, path, payload in [
        ("get", f"/api/v1/conversations/{conv['id']}", None),
        ("get", f"/api/v1/conversations/{conv['id']}/messages", None),
        ("post", f"/api/v1/conversations/{conv['id']}/messages", {"content": "x"}),
        ("post", f"/api/v1/conversations/{conv['id']}/originate", {"content": "x", "role": "assistant"}),
        ("get", f"/api/v1/agents/{agent['id']}/conversations", None),
        ("post", f"/api/v1/agents/{agent['id']}/conversations/create", {}),
    ]:
        response = await getattr(client, method)(path, json=payload, headers=orgs.b.headers)
        assert response.status_code == 404, path
    # Only the one conversation made before the agent was disabled was ever announced.
    assert [e for e, _, _ in events.all] == ["conversation.created"]


async def test_concurrent_sends_get_gap_free_seqs(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"

    async def send(i: int) -> int:
        if i % 2:
            r = await client.post(f"{base}/messages", json={"content": f"u{i}"}, headers=orgs.a.headers)
        else:
            r = await client.post(f"{base}/originate", json={"content": f"a{i}", "role": "assistant"}, headers=orgs.a.headers)
        assert r.status_code == 201
        return int((await r.get_json())["message"]["seq"])

    seqs = await asyncio.gather(*(send(i) for i in range(40)))
    assert sorted(seqs) == list(range(1, 41))
    stored = await (await client.get(f"{base}/messages?limit=200", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in stored["messages"]] == list(range(1, 41))
    # Each announced once, as stored (the order of announcements across requests is not fixed).
    assert sorted(events.of("message.created"), key=lambda m: m["seq"]) == stored["messages"]


async def test_concurrent_duplicate_originates_store_one_message(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"

    async def originate() -> tuple[int, dict]:
        r = await client.post(
            f"{base}/originate", json={"content": "once", "role": "assistant", "external_message_id": "ext-1"}, headers=orgs.a.headers
        )
        return r.status_code, await r.get_json()

    results = await asyncio.gather(*(originate() for _ in range(12)))
    created = [b for s, b in results if s == 201]
    conflicts = [b for s, b in results if s == 409]
    assert len(created) == 1 and len(conflicts) == 11
    winner = created[0]["message"]["id"]
    assert all(b["error"]["code"] == "duplicate_message" and b["error"]["details"]["message_id"] == winner for b in conflicts)
    # No seq was burnt by the losers: the next message is seq 2.
    nxt = await client.post(f"{base}/originate", json={"content": "next", "role": "assistant"}, headers=orgs.a.headers)
    assert (await nxt.get_json())["message"]["seq"] == 2
    assert [m["id"] for m in events.of("message.created")] == [winner, (await nxt.get_json())["message"]["id"]]
    # The same external id in another conversation is fine.
    other = await make_conversation(client, orgs.a.headers, agent["id"])
    again = await client.post(
        f"/api/v1/conversations/{other['id']}/originate",
        json={"content": "once", "role": "assistant", "external_message_id": "ext-1"},
        headers=orgs.a.headers,
    )
    assert again.status_code == 201


async def test_session_sends_in_own_conversation_only(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    member_id, member = await add_member(client, orgs.a, "m@acme.example")
    _, admin = await add_member(client, orgs.a, "a@acme.example", role="admin")
    conv = await make_conversation(client, auth(member), agent["id"])
    ok = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "mine"}, headers=auth(member))
    assert ok.status_code == 201
    admin_send = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "x"}, headers=auth(admin))
    assert admin_send.status_code == 403
    originate = await client.post(
        f"/api/v1/conversations/{conv['id']}/originate", json={"content": "x", "role": "assistant"}, headers=auth(member)
    )
    assert originate.status_code == 403
    assert events.all[-1] == ("message.created", conv_rooms(conv, member_id), (await ok.get_json())["message"])
    assert len(events.of("message.created")) == 1


async def test_agent_messages_endpoint_from_connection_info(client, orgs: Orgs, events: EventRecorder) -> None:
    agent = await make_agent(client, orgs.a.headers)
    other = await make_agent(client, orgs.a.headers, name="Other")
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    other_conv = await make_conversation(client, orgs.a.headers, other["id"])
    info = await (await client.get(f"/api/v1/agents/{agent['id']}/connection-info", headers=orgs.a.headers)).get_json()
    path = "/" + info["connection_info"]["api_endpoints"]["send_message"].split("/", 3)[3]
    assert path == f"/api/v1/agents/{agent['id']}/messages"

    body = {"conversation_id": conv["id"], "content": "Hi from the automation", "external_message_id": "ext-1"}
    response = await client.post(path, json=body, headers=orgs.a.headers)
    assert response.status_code == 201, await response.get_data(as_text=True)
    message = (await response.get_json())["message"]
    assert message["role"] == "assistant" and message["content"] == "Hi from the automation" and message["seq"] == 1
    history = await (await client.get(f"/api/v1/conversations/{conv['id']}/messages", headers=orgs.a.headers)).get_json()
    assert [m["id"] for m in history["messages"]] == [message["id"]]
    assert events.all[-1] == ("message.created", conv_rooms(conv, orgs.a.owner_id), message)

    again = await client.post(path, json=body, headers=orgs.a.headers)
    assert again.status_code == 409 and (await again.get_json())["error"]["details"]["message_id"] == message["id"]
    # Another agent's conversation, another organization, a session, a bad role.
    assert (await client.post(path, json={**body, "conversation_id": other_conv["id"]}, headers=orgs.a.headers)).status_code == 404
    assert (await client.post(path, json=body, headers=orgs.b.headers)).status_code == 404
    _, token = await add_member(client, orgs.a, "m@acme.example", role="admin")
    assert (await client.post(path, json={**body, "external_message_id": None}, headers={"Authorization": f"Bearer {token}"})).status_code == 403
    assert (await client.post(path, json={**body, "role": "user"}, headers=orgs.a.headers)).status_code == 422
    assert (await client.post(path, json={"content": "x"}, headers=orgs.a.headers)).status_code == 422
    assert events.of("message.created") == [message]


async def test_concurrent_messages_share_sqlite_commits(client, orgs: Orgs, db_url: str, monkeypatch, events: EventRecorder) -> None:
    """On SQLite, messages written in the same turn of the loop share one transaction, and a
    duplicate among them rolls back alone: no seq burnt, the others stored."""
    if not db_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's write path")
    from app.kernel.sqlite_direct import GroupCommit

    batches: list[int] = []
    run = GroupCommit._run

    def counting_run(self, db, items):  # type: ignore[no-untyped-def]
        batches.append(len(items))
        return run(self, db, items)

    monkeypatch.setattr(GroupCommit, "_run", counting_run)
    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"

    async def originate(i: int) -> tuple[int, dict]:
        body = {"content": f"m{i}", "role": "assistant", "external_message_id": "dup" if i % 5 == 0 else f"e{i}"}
        r = await client.post(f"{base}/originate", json=body, headers=orgs.a.headers)
        return r.status_code, await r.get_json()

    results = await asyncio.gather(*(originate(i) for i in range(20)))
    assert max(batches) > 1
    assert sorted(s for s, _ in results) == [201] * 17 + [409] * 3
    assert sorted(b["message"]["seq"] for s, b in results if s == 201) == list(range(1, 18))
    stored = await (await client.get(f"{base}/messages?limit=200", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in stored["messages"]] == list(range(1, 18))
    assert sorted(events.of("message.created"), key=lambda m: m["seq"]) == stored["messages"]


async def test_a_failing_message_in_a_shared_commit_fails_alone(client, orgs: Orgs, db_url: str, monkeypatch, events: EventRecorder) -> None:
    """One message whose write raises (here: its conversation vanished mid-flight) gets its
    own error; the messages committed with it are stored with gap-free seqs."""
    if not db_url.startswith("sqlite"):
        pytest.skip("group commit is SQLite's write path")
    from app.services import messages as messages_service

    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    base = f"/api/v1/conversations/{conv['id']}"
    insert = messages_service._insert_sqlite

    def flaky_insert(db, rows):  # type: ignore[no-untyped-def]
        if rows[0]["content"] == "boom":
            insert(db, rows)
            raise RuntimeError("write failed")
        return insert(db, rows)

    monkeypatch.setattr(messages_service._sqlite_writes, "_write_one", flaky_insert)

    async def originate(content: str) -> int:
        r = await client.post(f"{base}/originate", json={"content": content, "role": "assistant"}, headers=orgs.a.headers)
        return r.status_code

    statuses = await asyncio.gather(*(originate("boom" if i == 3 else f"m{i}") for i in range(8)))
    assert statuses.count(500) == 1 and statuses.count(201) == 7
    stored = await (await client.get(f"{base}/messages?limit=200", headers=orgs.a.headers)).get_json()
    assert [m["seq"] for m in stored["messages"]] == list(range(1, 8))
    assert "boom" not in [m["content"] for m in stored["messages"]]
    assert sorted(events.of("message.created"), key=lambda m: m["seq"]) == stored["messages"]


def test_group_commit_forgets_writes_left_by_a_stopped_loop() -> None:
    """A loop that stopped with a write queued but not flushed must not wedge the next loop."""
    from app.kernel.sqlite_direct import GroupCommit

    group: GroupCommit[int, int] = GroupCommit(lambda db, item: item)
    stopped = asyncio.new_event_loop()
    group._pending, group._loop = [(1, stopped.create_future())], stopped
    stopped.close()

    async def later() -> bool:
        submitted = asyncio.ensure_future(group.submit(2))
        await asyncio.sleep(0.05)
        # Flushed on this loop (without a database it fails, which is beside the point).
        flushed = submitted.done() and not group._pending
        if submitted.done():
            submitted.exception()
        return flushed

    assert asyncio.run(later())


async def test_a_cancelled_originate_still_announces_what_it_stored(client, orgs: Orgs, db_url: str, events: EventRecorder) -> None:
    """A client hanging up while its message waits for the shared commit: the message is
    stored all the same, so its ``message.created`` event must go out too."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the shared commit is SQLite's write path")
    from app.kernel.auth import authenticate_token
    from app.models.chat import Message
    from app.services import messages as messages_service

    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    principal = await authenticate_token(orgs.a.api_key)
    task = asyncio.create_task(messages_service.originate(principal, conv["id"], "hello"))
    for _ in range(100):  # until the caller waits on the shared commit
        await asyncio.sleep(0)
        if messages_service._sqlite_writes._pending:
            break
    assert messages_service._sqlite_writes._pending
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    announced = await events.wait_for("message.created")
    stored = await Message.get(conversation_id=conv["id"])
    assert announced["id"] == stored.id and announced["seq"] == 1 and announced["content"] == "hello"
    assert len(events.of("message.created")) == 1


def test_a_failed_commit_of_a_shared_write_leaves_no_transaction_open(tmp_path) -> None:
    """COMMIT can fail (a reader in rollback-journal mode, a full disk); the connection must
    not be left inside the transaction holding the write lock."""
    import sqlite3

    from app.kernel.sqlite_direct import GroupCommit

    path = str(tmp_path / "t.db")
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=DELETE")
    setup.execute("CREATE TABLE t(x)")
    direct = sqlite3.connect(path, isolation_level=None, timeout=0)
    reader = sqlite3.connect(path, isolation_level=None, timeout=0)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # a shared lock: COMMIT cannot take the file
    writes = GroupCommit(lambda db, item: db.execute("INSERT INTO t VALUES (?)", (item,)))
    with pytest.raises(sqlite3.OperationalError):
        writes._run(direct, [1])
    assert not direct.in_transaction
    reader.execute("COMMIT")
    outcomes = writes._run(direct, [2])  # the next batch starts its own transaction and commits
    assert [ok for ok, _ in outcomes] == [True]
    assert not direct.in_transaction
    setup.execute("INSERT INTO t VALUES (3)")  # and the file is free for other writers
    assert [x for (x,) in setup.execute("SELECT x FROM t ORDER BY x")] == [2, 3]


async def test_a_conversation_deleted_after_it_was_read_is_404_not_500(client, orgs: Orgs) -> None:
    from app.kernel.auth import authenticate_token
    from app.kernel.errors import NotFound
    from app.models.chat import Conversation
    from app.services import messages as messages_service

    agent = await make_agent(client, orgs.a.headers)
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    target = await messages_service._target(await authenticate_token(orgs.a.api_key), conv["id"])
    await Conversation.filter(id=conv["id"]).delete()  # gone between the read and the write
    with pytest.raises(NotFound):
        await messages_service._store(target, role="assistant", content="late", user_id=None, user_email=None)
