"""Webhook agents through the outbox, against a loopback receiver that checks signatures."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from app.kernel.config import Settings
from app.kernel.timefmt import utcnow
from app.models.chat import OutboxItem
from tests.chat.conftest import running_server
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import DrainOutbox, EventRecorder, LiveServer, Orgs, make_org, wait_for
from tests.fakes.webhook_receiver import WebhookReceiver


async def webhook_agent(http: httpx.AsyncClient, headers: dict[str, str], receiver: WebhookReceiver, **extra: Any) -> dict[str, Any]:
    r = await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": receiver.url, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    agent = r.json()["agent"]
    receiver.secrets.append(agent["signing_secret"])
    return agent  # type: ignore[no-any-return]


async def conversation(http: httpx.AsyncClient, headers: dict[str, str], agent_id: str) -> dict[str, Any]:
    r = await http.post(f"/api/v1/agents/{agent_id}/conversations/create", json={}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["conversation"]  # type: ignore[no-any-return]


async def send(http: httpx.AsyncClient, headers: dict[str, str], conv_id: str, content: str) -> dict[str, Any]:
    r = await http.post(f"/api/v1/conversations/{conv_id}/messages", json={"content": content}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["message"]  # type: ignore[no-any-return]


async def delivery(http: httpx.AsyncClient, headers: dict[str, str], delivery_id: str) -> dict[str, Any]:
    r = await http.get(f"/api/v1/deliveries/{delivery_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["delivery"]  # type: ignore[no-any-return]


async def worker_turn(http: httpx.AsyncClient, headers: dict[str, str], drain_outbox: DrainOutbox) -> OutboxItem:
    """One delivery through a fresh agent to a fresh receiver, sent and recorded: the worker
    has claimed since now. It claims due items oldest first, so anything claimable that was
    due before this one went out with it or earlier. Returns the item."""
    other = await WebhookReceiver().start()
    try:
        agent = await webhook_agent(http, headers, other)
        conv = await conversation(http, headers, agent["id"])
        message = await send(http, headers, conv["id"], "the worker's turn")
        items = await drain_outbox()
    finally:
        await other.stop()
    (item,) = [i for i in items if i.message_id == message["id"]]
    assert item.status == "succeeded" and len(other.acknowledged) == 1
    return item


async def test_a_refused_delivery_is_announced_once_in_process(client, orgs: Orgs, receiver, events: EventRecorder, drain_outbox: DrainOutbox) -> None:
    """The in-process app runs the outbox worker: a 4xx fails the delivery for good and
    ``delivery.failed`` goes to the conversation's rooms."""
    receiver.fail_times(1, 400)
    agent = await make_agent(client, orgs.a.headers, webhook_url=receiver.url)
    receiver.secrets.append(agent["signing_secret"])
    conv = await make_conversation(client, orgs.a.headers, agent["id"])
    sent = await client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"content": "refused"}, headers=orgs.a.headers)
    message = (await sent.get_json())["message"]

    failed = await events.wait_for("delivery.failed")
    items = await drain_outbox()
    assert [(i.status, i.attempts, i.last_status_code, i.message_id) for i in items] == [("failed", 1, 400, message["id"])]
    assert failed == {
        "delivery_id": items[0].id,
        "channel": "webhook",
        "event": "message.created",
        "conversation_id": conv["id"],
        "agent_id": agent["id"],
        "message_id": message["id"],
        "attempts": 1,
        "status_code": 400,
        "error": items[0].last_error,
        "failed_at": failed["failed_at"],
    }
    assert failed["failed_at"].endswith("Z")
    assert events.rooms_of("delivery.failed") == [[f"conv:{conv['id']}", f"user:{orgs.a.owner_id}"]]
    assert [e for e, _, _ in events.all] == ["conversation.created", "message.created", "delivery.failed"]
    assert len(receiver.received) == 1 and not receiver.invalid


async def test_payload_headers_and_signature(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    message = await send(http, live_orgs.a.headers, conv["id"], "Hello, I need help")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    got = receiver.received[0]
    assert got.signed_with == [agent["signing_secret"]]
    assert got.headers["X-Switchboard-Event"] == "message.created"
    assert got.headers["X-Switchboard-Delivery"].startswith("dlv_")
    assert got.headers["X-Switchboard-Timestamp"].isdigit()
    assert got.headers["Content-Type"] == "application/json"
    assert got.json == {
        "event": "message.created",
        "conversationId": conv["id"],
        "messageId": message["id"],
        "agentId": agent["id"],
        "content": "Hello, I need help",
        "userId": live_orgs.a.owner_id,
        "userEmail": live_orgs.a.owner_email,
        "timestamp": message["created_at"],
        # The same facts under the names automation platforms' nodes read, and where to answer.
        "type": "user_message",
        "origin": "person",
        "conversation_id": conv["id"],
        "message_id": message["id"],
        "agent_id": agent["id"],
        "user_id": live_orgs.a.owner_id,
        "organization_id": live_orgs.a.id,
        "response_webhook": None,  # named only under SWITCHBOARD_PUBLIC_URL (tests/chat/test_n8n.py)
    }
    # Agent messages are not sent back to the agent.
    await http.post(f"/api/v1/conversations/{conv['id']}/originate", json={"content": "hi", "role": "assistant"}, headers=live_orgs.a.headers)

    async def logged() -> bool:
        d = await delivery(http, live_orgs.a.headers, got.delivery_id)
        return d["status"] == "succeeded"

    await wait_for(logged)
    d = await delivery(http, live_orgs.a.headers, got.delivery_id)
    assert d["attempts"] == 1 and d["last_status_code"] == 200 and d["message_id"] == message["id"]
    assert [a["outcome"] for a in d["attempt_log"]] == ["succeeded"]
    assert d["attempt_log"][0]["latency_ms"] >= 0
    listed = (await http.get(f"/api/v1/deliveries?agent_id={agent['id']}&status=succeeded", headers=live_orgs.a.headers)).json()
    assert [x["id"] for x in listed["deliveries"]] == [got.delivery_id]
    assert len(receiver.received) == 1
    # Another organization sees none of it.
    assert (await http.get(f"/api/v1/deliveries/{got.delivery_id}", headers=live_orgs.b.headers)).status_code == 404
    assert (await http.get("/api/v1/deliveries", headers=live_orgs.b.headers)).json()["deliveries"] == []
    assert (await http.get("/api/v1/deliveries?status=bogus", headers=live_orgs.a.headers)).status_code == 422


async def test_test_mode_uses_test_url_and_rotation_signs_twice(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    agent = await webhook_agent(http, live_orgs.a.headers, receiver, test_webhook_url=receiver.url.replace("/hook", "/test"))
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"test_mode": True}, headers=live_orgs.a.headers)
    assert r.status_code == 200
    await send(http, live_orgs.a.headers, conv["id"], "to test")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    assert receiver.received[0].path == "/test"

    await http.patch(f"/api/v1/agents/{agent['id']}", json={"test_mode": False}, headers=live_orgs.a.headers)
    rotated = (await http.post(f"/api/v1/agents/{agent['id']}/rotate-secret", headers=live_orgs.a.headers)).json()
    receiver.secrets.append(rotated["signing_secret"])
    await send(http, live_orgs.a.headers, conv["id"], "after rotation")
    await receiver.wait_for(lambda r: len(r.received) == 2)
    second = receiver.received[1]
    assert second.path == "/hook"
    assert sorted(second.signed_with) == sorted([agent["signing_secret"], rotated["signing_secret"]])
    assert second.headers["X-Switchboard-Signature"].count("v1=") == 2


async def test_retries_until_success_with_the_same_delivery_id(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    receiver.fail_times(2, 503, headers={"Retry-After": "0"})
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "please retry")
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    assert [r.status for r in receiver.received] == [503, 503, 200]
    assert len({r.delivery_id for r in receiver.received}) == 1
    assert not receiver.invalid

    async def recorded() -> bool:
        return (await delivery(http, live_orgs.a.headers, receiver.received[0].delivery_id))["status"] == "succeeded"

    await wait_for(recorded)
    d = await delivery(http, live_orgs.a.headers, receiver.received[0].delivery_id)
    assert [(a["outcome"], a["status_code"]) for a in d["attempt_log"]] == [("retry", 503), ("retry", 503), ("succeeded", 200)]


async def test_backoff_without_retry_after(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    receiver.fail_times(1, 500)
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "backoff")
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1, timeout=5)
    gap = float(receiver.received[1].headers["X-Switchboard-Timestamp"]) - float(receiver.received[0].headers["X-Switchboard-Timestamp"])
    assert 0 <= gap <= 2  # first backoff is 0.5-1 s


async def test_client_errors_are_not_retried_and_fail_loudly(live_server: LiveServer, live_orgs: Orgs, http, receiver, sockets, drain_outbox: DrainOutbox) -> None:
    receiver.fail_times(1, 400)
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    watcher = await sockets(live_server.url, live_orgs.a.api_key)
    await watcher.call("subscribe", {"conversation_id": conv["id"]})
    message = await send(http, live_orgs.a.headers, conv["id"], "bad request")
    await wait_for(lambda: watcher.of("delivery.failed"))
    event = watcher.of("delivery.failed")[0]
    assert event["message_id"] == message["id"] and event["status_code"] == 400 and event["attempts"] == 1
    # The worker has done all it can: the failure is final, and nothing was sent again.
    assert [i.status for i in await drain_outbox()] == ["failed"]
    assert len(receiver.received) == 1
    d = await delivery(http, live_orgs.a.headers, event["delivery_id"])
    assert d["status"] == "failed" and d["last_status_code"] == 400
    assert [a["outcome"] for a in d["attempt_log"]] == ["failed"]

    # Retried by hand: same id, same body; the receiver now accepts it.
    r = await http.post(f"/api/v1/deliveries/{event['delivery_id']}/retry", headers=live_orgs.a.headers)
    assert r.status_code == 202 and r.json()["delivery"]["status"] == "pending"
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    assert receiver.received[1].delivery_id == event["delivery_id"]
    assert receiver.received[1].body == receiver.received[0].body
    assert (await http.post("/api/v1/deliveries/dlv_nope/retry", headers=live_orgs.a.headers)).status_code == 404
    assert (await http.post(f"/api/v1/deliveries/{event['delivery_id']}/retry", headers=live_orgs.b.headers)).status_code == 404


async def test_per_conversation_order_holds_through_failures(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    # The first attempt of every delivery fails, so each conversation's queue has to wait.
    receiver.fail_times(1, 503, headers={"Retry-After": "0"})
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    convs = [await conversation(http, live_orgs.a.headers, agent["id"]) for _ in range(3)]
    sent: dict[str, list[str]] = {c["id"]: [] for c in convs}

    async def burst(conv_id: str) -> None:
        for i in range(8):
            sent[conv_id].append((await send(http, live_orgs.a.headers, conv_id, f"m{i}"))["id"])

    await asyncio.gather(*(burst(c["id"]) for c in convs))
    await receiver.wait_for(lambda r: len(r.acknowledged) == 24, timeout=20)
    for conv_id, ids in sent.items():
        arrived = [r.json["messageId"] for r in receiver.received if r.json["conversationId"] == conv_id]
        # Each message: one failed attempt, then its success, before the next message starts.
        assert arrived == [m for m in ids for _ in (0, 1)]
    assert len({r.delivery_id for r in receiver.acknowledged}) == 24


async def test_timeouts_are_retried(settings: Settings, receiver) -> None:
    calls = {"n": 0}

    async def slow_first(_: WebhookReceiver, __: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(1.0)
        return None

    receiver.respond = slow_first
    async with running_server(settings.with_overrides(webhook_timeout_seconds=0.3)) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            agent = await webhook_agent(http, org.headers, receiver)
            conv = await conversation(http, org.headers, agent["id"])
            await send(http, org.headers, conv["id"], "slow")
            await receiver.wait_for(lambda r: len(r.received) == 2, timeout=5)

            async def recorded() -> bool:
                d = await delivery(http, org.headers, receiver.received[1].delivery_id)
                return d["status"] == "succeeded"

            await wait_for(recorded)
            d = await delivery(http, org.headers, receiver.received[1].delivery_id)
            assert d["attempt_log"][0]["outcome"] == "retry" and d["attempt_log"][0]["error"].startswith("timeout")


async def test_pending_deliveries_resume_after_restart(settings: Settings, receiver, drain_outbox: DrainOutbox) -> None:
    receiver.fail_times(1, 503, headers={"Retry-After": "2"})
    async with running_server(settings) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            agent = await webhook_agent(http, org.headers, receiver)
            convs = [await conversation(http, org.headers, agent["id"]) for _ in range(2)]
            for conv in convs:
                for i in range(3):
                    await send(http, org.headers, conv["id"], f"m{i}")
            # Two heads tried and refused; everything else waits behind them.
            await receiver.wait_for(lambda r: len(r.received) == 2)
    assert receiver.acknowledged == []
    receiver.respond = None  # the receiver is healthy again

    async with running_server(settings) as server:
        await receiver.wait_for(lambda r: len(r.acknowledged) == 6, timeout=10)
        # All recorded and nothing left to do: no delivery can go out a second time.
        assert [i.status for i in await drain_outbox()] == ["succeeded"] * 6
    acked = [r.delivery_id for r in receiver.acknowledged]
    assert len(acked) == len(set(acked)) == 6
    assert not receiver.invalid


async def test_deleting_an_agent_cancels_its_pending_deliveries(live_server: LiveServer, live_orgs: Orgs, http, receiver, drain_outbox: DrainOutbox) -> None:
    receiver.fail_times(1, 503, headers={"Retry-After": "60"})
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "first")
    await send(http, live_orgs.a.headers, conv["id"], "queued behind it")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    assert [i.status for i in await drain_outbox()] == ["pending", "pending"]  # the refusal is recorded
    head = receiver.received[0].delivery_id
    assert (await http.delete(f"/api/v1/agents/{agent['id']}", headers=live_orgs.a.headers)).status_code == 200
    # As if the Retry-After had passed: both are due, but cancelled; the worker's next turn
    # leaves them alone, signed or not.
    await OutboxItem.filter(agent_id=agent["id"]).update(next_attempt_at=utcnow() - timedelta(seconds=1))
    await worker_turn(http, live_orgs.a.headers, drain_outbox)
    assert len(receiver.received) == 1 and not receiver.invalid
    listed = (await http.get(f"/api/v1/deliveries?agent_id={agent['id']}", headers=live_orgs.a.headers)).json()["deliveries"]
    assert len(listed) == 2
    assert {d["status"] for d in listed} == {"cancelled"}
    assert all("agent was deleted" in d["last_error"] for d in listed)
    d = await delivery(http, live_orgs.a.headers, head)
    assert [a["outcome"] for a in d["attempt_log"]] == ["retry"] and d["next_attempt_at"] is None
    r = await http.post(f"/api/v1/deliveries/{head}/retry", headers=live_orgs.a.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "delivery_cancelled"


async def test_disabled_agent_holds_deliveries_and_resumes_on_its_current_url(live_server: LiveServer, live_orgs: Orgs, http, receiver, drain_outbox: DrainOutbox) -> None:
    receiver.fail_times(1, 503, headers={"Retry-After": "60"})
    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "held")
    await receiver.wait_for(lambda r: len(r.received) == 1)
    r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"enabled": False}, headers=live_orgs.a.headers)
    assert r.status_code == 200
    await drain_outbox()  # the refusal is recorded
    # As if the Retry-After had passed: the retry is due, but the agent is disabled, so the
    # worker's next turn spends no attempt on it.
    await OutboxItem.filter(agent_id=agent["id"]).update(next_attempt_at=utcnow() - timedelta(seconds=1))
    await worker_turn(http, live_orgs.a.headers, drain_outbox)
    assert len(receiver.received) == 1
    d = await delivery(http, live_orgs.a.headers, receiver.received[0].delivery_id)
    assert d["status"] == "pending" and d["attempts"] == 1

    new_url = receiver.url.replace("/hook", "/moved")
    r = await http.patch(f"/api/v1/agents/{agent['id']}", json={"enabled": True, "webhook_url": new_url}, headers=live_orgs.a.headers)
    assert r.status_code == 200
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1, timeout=5)
    assert receiver.received[-1].path == "/moved" and not receiver.invalid

    async def recorded() -> bool:
        return (await delivery(http, live_orgs.a.headers, receiver.received[0].delivery_id))["status"] == "succeeded"

    await wait_for(recorded)
    d = await delivery(http, live_orgs.a.headers, receiver.received[0].delivery_id)
    assert d["url"] == new_url and [a["outcome"] for a in d["attempt_log"]] == ["retry", "succeeded"]


async def test_attempt_log_is_bounded(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    from app.models.chat import DeliveryAttempt
    from app.services.deliveries import ATTEMPT_LOG_LIMIT
    from app.kernel.timefmt import utcnow

    agent = await webhook_agent(http, live_orgs.a.headers, receiver)
    conv = await conversation(http, live_orgs.a.headers, agent["id"])
    await send(http, live_orgs.a.headers, conv["id"], "once")
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    delivery_id = receiver.received[0].delivery_id

    async def recorded() -> bool:
        return (await delivery(http, live_orgs.a.headers, delivery_id))["status"] == "succeeded"

    await wait_for(recorded)
    # As after many retries by hand: far more attempts than one response should carry.
    await DeliveryAttempt.bulk_create(
        [DeliveryAttempt(delivery_id=delivery_id, number=n, outcome="failed", status_code=400, latency_ms=1, attempted_at=utcnow()) for n in range(2, 2 + ATTEMPT_LOG_LIMIT + 50)]
    )
    d = await delivery(http, live_orgs.a.headers, delivery_id)
    assert len(d["attempt_log"]) == ATTEMPT_LOG_LIMIT and d["attempt_log_truncated"] is True
    numbers = [a["number"] for a in d["attempt_log"]]
    assert numbers == sorted(numbers) and numbers[-1] == 1 + ATTEMPT_LOG_LIMIT + 50
