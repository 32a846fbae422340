"""Interactive messages end to end on the real server: the seed's examples, answers over
REST and socket.io, exactly one answer and one signed callback, expiry (live and after a
restart), the long-poll, isolation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from app.kernel.config import Settings
from app.kernel.db import close_db, init_db
from app.kernel.timefmt import iso, utcnow
from app.models.chat import Interaction, OutboxItem
from tests.chat.conftest import running_server
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import LiveServer, Orgs, login, make_org, wait_for
from tests.fakes.webhook_receiver import WebhookReceiver

APPROVAL = [
    {"type": "header", "text": "Invoice Approval"},
    {"type": "text", "text": "Invoice #1234 for $5,000"},
    {"type": "boolean"},
]
EXPENSE = [
    {"type": "header", "text": "Submit Expense"},
    {"type": "fields", "submit_label": "Submit", "inputs": [{"name": "amount", "label": "Amount ($)", "input_type": "number", "required": True}]},
]


class Chat:
    """A conversation of org A's owner with a webhook agent, seen over HTTP."""

    def __init__(self, http: httpx.AsyncClient, org: Any, conv_id: str, session: str, secret: str) -> None:
        self.http, self.org, self.conv_id, self.session, self.secret = http, org, conv_id, session, secret

    @property
    def person(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.session}"}

    async def ask(self, receiver: WebhookReceiver, elements: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        body = {"callback_url": receiver.url, "callback_id": extra.pop("callback_id", "cb-1"), "elements": elements, **extra}
        r = await self.http.post(f"/api/v1/conversations/{self.conv_id}/interactive", json=body, headers=self.org.headers)
        assert r.status_code == 201, r.text
        return r.json()["message"]  # type: ignore[no-any-return]

    async def answer(self, message_id: str, answer: dict[str, Any]) -> httpx.Response:
        return await self.http.post(f"/api/v1/messages/{message_id}/respond", json=answer, headers=self.person)


async def open_chat(http: httpx.AsyncClient, org: Any, receiver: WebhookReceiver) -> Chat:
    agent = (await http.post("/api/v1/agents", json={"name": "n8n", "webhook_url": receiver.url}, headers=org.headers)).json()["agent"]
    conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={}, headers=org.headers)).json()["conversation"]
    r = await http.post("/api/v1/auth/login", json={"email": org.owner_email, "password": org.owner_password})
    session = r.json()["token"]
    secret = (await http.get("/api/v1/organization/callback-secret", headers=org.headers)).json()["callback_secret"]
    receiver.secrets.append(secret)
    return Chat(http, org, conv["id"], session, secret)


async def test_the_seed_examples_and_an_approval(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    approval = await chat.ask(receiver, APPROVAL, callback_id="approval-001")
    assert approval["kind"] == "interactive" and approval["role"] == "assistant"
    assert approval["interaction"] == {"status": "pending", "action_type": "boolean", "expires_at": None}
    assert approval["content"] == "Invoice Approval\n\nInvoice #1234 for $5,000" and len(approval["elements"]) == 3
    expense = await chat.ask(receiver, EXPENSE, callback_id="expense-001")
    assert expense["seq"] == approval["seq"] + 1 and expense["elements"][1]["inputs"][0]["required"] is True

    # Listed with the conversation's messages, with their state.
    listed = (await http.get(f"/api/v1/conversations/{chat.conv_id}/messages", headers=chat.person)).json()["messages"]
    assert [m["interaction"]["status"] for m in listed] == ["pending", "pending"]

    answered = await chat.answer(approval["id"], {"approved": True, "message": "Looks good"})
    assert answered.status_code == 200, answered.text
    state = answered.json()["message"]["interaction"]
    assert state["status"] == "responded" and state["response"] == {"approved": True, "message": "Looks good"}
    assert state["responded_by"]["email"] == live_orgs.a.owner_email

    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    (hook,) = receiver.acknowledged
    assert hook.signed_with == [chat.secret] and hook.headers["X-Switchboard-Event"] == "interactive.responded"
    assert hook.json == {
        "callback_id": "approval-001",
        "conversation_id": chat.conv_id,
        "message_id": approval["id"],
        "response_type": "boolean",
        "approved": True,
        "message": "Looks good",
        "responded_at": state["responded_at"],
        "responded_by": {"user_id": live_orgs.a.owner_id, "email": live_orgs.a.owner_email},
    }
    again = await chat.answer(approval["id"], {"approved": False, "message": "changed my mind"})
    assert again.status_code == 409
    err = again.json()["error"]
    assert err["code"] == "already_responded" and err["details"]["response"] == {"approved": True, "message": "Looks good"}

    bad = await chat.answer(expense["id"], {"data": {"amount": "a lot"}})
    assert bad.status_code == 422 and "data.amount" in bad.json()["error"]["details"]
    good = await chat.answer(expense["id"], {"data": {"amount": "500"}})
    assert good.status_code == 200
    await receiver.wait_for(lambda r: len(r.acknowledged) == 2)
    assert receiver.acknowledged[1].json["data"] == {"amount": 500} and receiver.acknowledged[1].json["response_type"] == "fields"


async def test_validation_points_at_the_element(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    url = f"/api/v1/conversations/{chat.conv_id}/interactive"
    fields = {"type": "fields", "inputs": [{"name": "a", "label": "A", "input_type": "text"}, {"name": "b", "label": "B", "input_type": "colour"}]}
    r = await http.post(url, json={"callback_url": receiver.url, "callback_id": "x", "elements": [*APPROVAL[:2], {"type": "divider"}, fields]}, headers=chat.org.headers)
    assert r.status_code == 422 and "elements[3].inputs[1].input_type" in r.json()["error"]["details"]
    two = await http.post(url, json={"callback_url": receiver.url, "callback_id": "x", "elements": [{"type": "boolean"}, {"type": "boolean"}]}, headers=chat.org.headers)
    assert two.status_code == 422 and "elements" in two.json()["error"]["details"]
    ftp = await http.post(url, json={"callback_url": "ftp://example.com/cb", "callback_id": "x", "elements": APPROVAL}, headers=chat.org.headers)
    assert ftp.status_code == 422 and "callback_url" in ftp.json()["error"]["details"]
    past = await http.post(url, json={"callback_url": receiver.url, "callback_id": "x", "elements": APPROVAL, "expires_at": iso(utcnow() - timedelta(minutes=1))}, headers=chat.org.headers)
    assert past.status_code == 422 and "expires_at" in past.json()["error"]["details"]
    person = await http.post(url, json={"callback_url": receiver.url, "callback_id": "x", "elements": APPROVAL}, headers=chat.person)
    assert person.status_code == 403
    other = await http.post(url, json={"callback_url": receiver.url, "callback_id": "x", "elements": APPROVAL}, headers=live_orgs.b.headers)
    assert other.status_code == 404


async def test_ten_answers_at_once_record_one(live_server: LiveServer, live_orgs: Orgs, http, receiver, sockets) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    pick = [{"type": "buttons", "options": [{"label": str(n), "value": f"v{n}"} for n in range(10)]}]
    message = await chat.ask(receiver, pick)
    clients = [await sockets(live_server.url, chat.session) for _ in range(10)]
    acks = await asyncio.gather(*(c.call("interactive.respond", {"message_id": message["id"], "selection": f"v{n}"}) for n, c in enumerate(clients)))
    winners = [a for a in acks if a.get("success")]
    assert len(winners) == 1
    assert sorted(a["error"]["code"] for a in acks if "error" in a) == ["already_responded"] * 9
    await receiver.wait_for(lambda r: len(r.acknowledged) >= 1)
    items = await OutboxItem.filter(message_id=message["id"], channel="callback")
    assert len(items) == 1
    await wait_for(lambda: all(len(c.of("message.updated")) == 1 for c in clients))
    assert receiver.acknowledged[0].json["selection"] == winners[0]["message"]["interaction"]["response"]["selection"]


async def test_another_organization_can_neither_see_nor_answer(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    message = await chat.ask(receiver, APPROVAL)
    outsider = await login(_Sync(http), live_orgs.b.owner_email, live_orgs.b.owner_password)
    headers = {"Authorization": f"Bearer {outsider}"}
    assert (await http.post(f"/api/v1/messages/{message['id']}/respond", json={"approved": True}, headers=headers)).status_code == 404
    assert (await http.get(f"/api/v1/messages/{message['id']}", headers=live_orgs.b.headers)).status_code == 404
    assert (await Interaction.get(message_id=message["id"])).status == "pending"


async def test_the_long_poll_returns_on_answer_and_on_timeout(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    message = await chat.ask(receiver, APPROVAL)
    url = f"/api/v1/messages/{message['id']}"
    started = asyncio.get_running_loop().time()
    timed_out = await http.get(url, params={"wait": "0.3"}, headers=chat.org.headers)
    assert timed_out.json()["message"]["interaction"]["status"] == "pending"
    assert asyncio.get_running_loop().time() - started >= 0.3
    waiting = asyncio.create_task(http.get(url, params={"wait": "30"}, headers=chat.org.headers))
    await asyncio.sleep(0.2)  # the poller is parked before the answer (the answer must wake it)
    assert not waiting.done()
    await chat.answer(message["id"], {"approved": False, "message": "no budget"})
    answered = await asyncio.wait_for(waiting, timeout=5)
    assert answered.json()["message"]["interaction"]["response"] == {"approved": False, "message": "no budget"}
    too_long = await http.get(url, params={"wait": "61"}, headers=chat.org.headers)
    assert too_long.status_code == 422


async def test_expiry_sends_one_expired_callback(live_server: LiveServer, live_orgs: Orgs, http, receiver, sockets) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    watcher = await sockets(live_server.url, chat.session)
    message = await chat.ask(receiver, APPROVAL, expires_at=iso(utcnow() + timedelta(seconds=1)))
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    body = receiver.acknowledged[0].json
    assert body["response_type"] == "expired" and body["message_id"] == message["id"]
    assert receiver.acknowledged[0].headers["X-Switchboard-Event"] == "interactive.expired"
    await wait_for(lambda: len(watcher.of("message.updated")) == 1)
    assert watcher.of("message.updated")[0]["interaction"]["status"] == "expired"
    late = await chat.answer(message["id"], {"approved": True})
    assert late.status_code == 410 and late.json()["error"]["code"] == "expired"


async def test_expiry_that_passed_while_down_is_sent_after_the_restart(settings: Settings) -> None:
    receiver = await WebhookReceiver().start()
    try:
        async with running_server(settings) as server:
            org = await make_org("Acme")
            async with httpx.AsyncClient(base_url=server.url) as http:
                chat = await open_chat(http, org, receiver)
                message = await chat.ask(receiver, APPROVAL, expires_at=iso(utcnow() + timedelta(seconds=30)))
        # Moved past its deadline only once the server is down (a server still running could
        # see it at its clock's next look): as if it had been down past the deadline.
        await init_db(settings)
        try:
            await Interaction.filter(message_id=message["id"]).update(expires_at=utcnow() - timedelta(seconds=1))
        finally:
            await close_db()
        assert receiver.received == []
        async with running_server(settings):
            await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
            assert await OutboxItem.filter(message_id=message["id"], channel="callback").count() == 1
        assert receiver.acknowledged[0].json["response_type"] == "expired"
    finally:
        await receiver.stop()


async def test_callbacks_retry_on_5xx_and_not_on_4xx(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    receiver.fail_times(1, status=503)
    first = await chat.ask(receiver, APPROVAL)
    await chat.answer(first["id"], {"approved": True})
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    assert [r.status for r in receiver.received] == [503, 200]
    receiver.fail_times(5, status=400)
    receiver.received.clear()
    second = await chat.ask(receiver, APPROVAL, callback_id="cb-2")
    await chat.answer(second["id"], {"approved": True})
    (item,) = await OutboxItem.filter(message_id=second["id"])

    async def failed() -> bool:
        await item.refresh_from_db()
        return item.status == "failed"

    await wait_for(failed)
    assert [r.status for r in receiver.received] == [400]


async def test_callback_secret_rotation_signs_with_both(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    rotated = (await http.post("/api/v1/organization/callback-secret/rotate", headers=chat.org.headers)).json()
    assert rotated["callback_secret"] != chat.secret and rotated["previous_secret_expires_at"]
    receiver.secrets.append(rotated["callback_secret"])
    message = await chat.ask(receiver, APPROVAL)
    await chat.answer(message["id"], {"approved": True})
    await receiver.wait_for(lambda r: len(r.acknowledged) == 1)
    assert sorted(receiver.acknowledged[0].signed_with) == sorted([chat.secret, rotated["callback_secret"]])
    member_view = await http.get("/api/v1/organization/callback-secret", headers=chat.person)
    assert member_view.status_code == 200  # the owner's session is an admin's


class _Sync:
    """``login`` from tests.conftest takes a Quart test client; this adapts httpx to it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, url: str, json: Any, headers: dict[str, str] | None = None) -> Any:
        response = await self.http.post(url, json=json, headers=headers)

        class _R:
            status_code = response.status_code

            async def get_json(self) -> Any:
                return response.json()

            async def get_data(self, as_text: bool = False) -> Any:
                return response.text

        return _R()


async def test_expires_at_in_any_time_zone_means_the_same_moment(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    from datetime import timezone as tz

    chat = await open_chat(http, live_orgs.a, receiver)
    in_an_hour = (utcnow() + timedelta(hours=1)).astimezone(tz(timedelta(hours=-5)))
    message = await chat.ask(receiver, APPROVAL, expires_at=in_an_hour.isoformat())
    assert message["interaction"]["expires_at"] == iso(in_an_hour)
    answered = await chat.answer(message["id"], {"approved": True})
    assert answered.status_code == 200, answered.text


async def test_who_may_answer(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    from tests.conftest import add_member

    chat = await open_chat(http, live_orgs.a, receiver)
    message = await chat.ask(receiver, APPROVAL)
    by_key = await http.post(f"/api/v1/messages/{message['id']}/respond", json={"approved": True}, headers=chat.org.headers)
    assert by_key.status_code == 403
    _, member = await add_member(_Sync(http), chat.org, "bystander@acme.example")
    stranger = {"Authorization": f"Bearer {member}"}
    assert (await http.post(f"/api/v1/messages/{message['id']}/respond", json={"approved": True}, headers=stranger)).status_code == 404
    assert (await http.get(f"/api/v1/messages/{message['id']}", headers=stranger)).status_code == 404
    assert (await http.get("/api/v1/organization/callback-secret", headers=stranger)).status_code == 403
    assert (await Interaction.get(message_id=message["id"])).status == "pending"


async def test_hostile_input_is_refused_not_a_500(live_server: LiveServer, live_orgs: Orgs, http, receiver, sockets) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    url = f"/api/v1/conversations/{chat.conv_id}/interactive"
    base = {"callback_url": receiver.url, "callback_id": "x"}
    for expires in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "soon"):
        r = await http.post(url, json={**base, "elements": APPROVAL, "expires_at": expires}, headers=chat.org.headers)
        assert r.status_code == 422 and "expires_at" in r.json()["error"]["details"], r.text
    big = [{"type": "number_input", "max": 2**64}]
    assert (await http.post(url, json={**base, "elements": big}, headers=chat.org.headers)).status_code == 422
    huge = [{"type": "fields", "inputs": [
        {"name": f"i{n}", "label": "x", "input_type": "select", "options": [f"{n}-{k}-" + "o" * 190 for k in range(100)]}
        for n in range(20)
    ]}]
    r = await http.post(url, json={**base, "elements": huge}, headers=chat.org.headers)
    assert r.status_code == 422 and "elements" in r.json()["error"]["details"]
    form = await chat.ask(receiver, [{"type": "fields", "inputs": [
        {"name": "n", "label": "N", "input_type": "number"}, {"name": "dt", "label": "When", "input_type": "datetime"},
    ]}])
    for data in ({"n": 2**64}, {"n": str(2**64)}, {"dt": "0001-01-01T00:00+01:00"}):
        r = await chat.answer(form["id"], {"data": data})
        assert r.status_code == 422, r.text
    client = await sockets(live_server.url, chat.session)
    for text in ("a\x00b", "a\ud800b"):
        ack = await client.call("interactive.respond", {"message_id": form["id"], "data": {"dt": text}})
        assert ack["error"]["code"] in ("validation_failed", "invalid_json"), ack
    assert (await Interaction.get(message_id=form["id"])).status == "pending"


async def test_expiry_goes_on_when_a_conversation_is_deleted(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    doomed = await open_chat(http, live_orgs.a, receiver)
    first = await doomed.ask(receiver, APPROVAL, callback_id="gone", expires_at=iso(utcnow() + timedelta(seconds=1)))
    agent_id = (await http.get(f"/api/v1/conversations/{doomed.conv_id}", headers=doomed.org.headers)).json()["conversation"]["agent_id"]
    assert (await http.delete(f"/api/v1/agents/{agent_id}", headers=doomed.org.headers)).status_code == 200
    alive = await open_chat(http, live_orgs.a, receiver)
    second = await alive.ask(receiver, APPROVAL, callback_id="alive", expires_at=iso(utcnow() + timedelta(seconds=2)))
    await receiver.wait_for(lambda r: len(r.acknowledged) == 2, timeout=10)
    bodies = {r.json["callback_id"]: r.json for r in receiver.acknowledged}
    assert bodies["gone"]["response_type"] == bodies["alive"]["response_type"] == "expired"
    assert bodies["gone"]["message_id"] == first["id"] and bodies["alive"]["message_id"] == second["id"]


async def test_many_long_polls_on_one_message_wake_together(live_server: LiveServer, live_orgs: Orgs, http, receiver) -> None:
    chat = await open_chat(http, live_orgs.a, receiver)
    message = await chat.ask(receiver, APPROVAL)
    url = f"/api/v1/messages/{message['id']}"
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(base_url=live_server.url, limits=limits, timeout=30) as many:
        polls = [asyncio.create_task(many.get(url, params={"wait": "20"}, headers=chat.org.headers)) for _ in range(200)]
        await asyncio.sleep(1.0)  # parked before the answer: the answer must wake them
        assert not any(p.done() for p in polls)
        await chat.answer(message["id"], {"approved": True})
        answers = await asyncio.wait_for(asyncio.gather(*polls), timeout=10)
    assert {a.json()["message"]["interaction"]["status"] for a in answers} == {"responded"}
