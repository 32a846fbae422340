"""Approve from a notification: an interactive boolean or buttons message pushes the
conversation's owner a one-time action token that answers that message and nothing else."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from app.models.chat import OutboxItem
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import Orgs, add_member, login
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.push.conftest import Fakes, register_ios, register_web
from tests.push.test_send import auth, owner_session

APPROVAL = [
    {"type": "header", "text": "Invoice Approval"},
    {"type": "text", "text": "Invoice #1234 for $5,000"},
    {"type": "boolean", "approve_label": "Pay it", "reject_label": "Hold"},
]
CHOICE = [{"type": "text", "text": "Which plan?"}, {"type": "buttons", "options": [
    {"label": "Basic", "value": "basic"}, {"label": "Pro", "value": "pro", "style": "primary"}]}]


@pytest.fixture
async def callbacks(client: Any, orgs: Orgs) -> AsyncIterator[WebhookReceiver]:
    r = await client.get("/api/v1/organization/callback-secret", headers=orgs.a.headers)
    receiver = await WebhookReceiver(secrets=[(await r.get_json())["callback_secret"]]).start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def ask(client: Any, orgs: Orgs, receiver: WebhookReceiver, elements: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    agent = await make_agent(client, orgs.a.headers, webhook_url=receiver.url)
    conversation = await make_conversation(client, orgs.a.headers, agent["id"])
    r = await client.post(
        f"/api/v1/conversations/{conversation['id']}/interactive",
        json={"callback_url": receiver.url, "callback_id": "inv-1234", "elements": elements, **extra},
        headers=orgs.a.headers,
    )
    assert r.status_code == 201, await r.get_data(as_text=True)
    return (await r.get_json())["message"]  # type: ignore[no-any-return]


def answer(client: Any, message_id: str, token: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/messages/{message_id}/respond", json=body, headers=auth(token))


async def test_approve_from_a_notification(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    await register_web(client, session, fakes.web.subscribe())
    message = await ask(client, orgs, callbacks, APPROVAL)
    [push] = await fakes.apns.wait_for(1)
    [web] = await fakes.web.wait_for(1)
    aps = push.payload["aps"]
    assert aps["category"] == "SWITCHBOARD_APPROVAL" and aps["alert"]["title"] == "Invoice Approval"
    assert aps["interruption-level"] == "time-sensitive"
    action = push.payload["action"]
    assert action["message_id"] == message["id"] and action["respond_url"] == f"/api/v1/messages/{message['id']}/respond"
    assert [(o["id"], o["title"], o["answer"]) for o in action["options"]] == [
        ("approve", "Pay it", {"approved": True}), ("reject", "Hold", {"approved": False})]
    assert web.payload["actions"] == [{"action": "approve", "title": "Pay it"}, {"action": "reject", "title": "Hold"}]
    token = action["token"]
    assert token.startswith("act_") and web.payload["action"]["token"] == token
    # The token rides in the outbox sealed: the delivery log never shows it.
    assert not any(token in item.body for item in await OutboxItem.filter(kind="push"))
    # It authenticates nothing else.
    assert (await client.get(f"/api/v1/messages/{message['id']}", headers=auth(token))).status_code == 401
    assert (await client.get("/api/v1/push/devices", headers=auth(token))).status_code == 401
    r = await answer(client, message["id"], token, {"approved": True, "message": "paid from the lock screen"})
    assert r.status_code == 200, await r.get_data(as_text=True)
    interaction = (await r.get_json())["message"]["interaction"]
    assert interaction["status"] == "responded" and interaction["response"]["approved"] is True
    assert interaction["responded_by"]["email"] == orgs.a.owner_email
    await callbacks.wait_for(lambda rec: len(rec.acknowledged) == 1)
    callback = callbacks.acknowledged[0]
    assert callback.json["callback_id"] == "inv-1234" and callback.signed_with
    # Once: a second use is refused.
    again = await answer(client, message["id"], token, {"approved": False})
    assert again.status_code == 401 and (await again.get_json())["error"]["code"] == "invalid_action_token"


async def test_a_choice_and_a_refused_answer_leaves_the_token_usable(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    message = await ask(client, orgs, callbacks, CHOICE)
    [push] = await fakes.apns.wait_for(1)
    assert push.payload["aps"]["category"] == "SWITCHBOARD_CHOICE"
    token = push.payload["action"]["token"]
    assert [o["answer"] for o in push.payload["action"]["options"]] == [{"selection": "basic"}, {"selection": "pro"}]
    assert (await answer(client, message["id"], token, {"selection": "enterprise"})).status_code == 422
    assert (await answer(client, message["id"], token, {"selection": "pro"})).status_code == 200


async def test_a_token_answers_only_its_message_and_not_after_anyone_answered(
    client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver
) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    first = await ask(client, orgs, callbacks, APPROVAL)
    second = await ask(client, orgs, callbacks, APPROVAL)
    pushes = await fakes.apns.wait_for(2)
    token_first, token_second = (p.payload["action"]["token"] for p in pushes)
    assert (await answer(client, second["id"], token_first, {"approved": True})).status_code == 401
    # The person answers in the app; the notification's token then cannot answer again.
    assert (await answer(client, first["id"], session, {"approved": False, "message": "no"})).status_code == 200
    late = await answer(client, first["id"], token_first, {"approved": True})
    assert late.status_code == 409 and (await late.get_json())["error"]["code"] == "already_responded"
    assert (await answer(client, second["id"], token_second, {"approved": True})).status_code == 200
    assert (await answer(client, second["id"], "act_forged", {"approved": True})).status_code == 401


async def test_expired_tokens_and_removed_people_are_refused(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    from app.kernel.timefmt import utcnow
    from app.models.push import ActionToken

    session = await owner_session(client, orgs)
    await register_ios(client, session)
    message = await ask(client, orgs, callbacks, APPROVAL)
    [push] = await fakes.apns.wait_for(1)
    await ActionToken.filter(message_id=message["id"]).update(expires_at=utcnow())
    r = await answer(client, message["id"], push.payload["action"]["token"], {"approved": True})
    assert r.status_code == 401


async def test_no_devices_no_push_and_forms_are_not_pushed(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    from app.models.push import ActionToken, Device, Notification

    await ask(client, orgs, callbacks, APPROVAL)  # the owner has no devices yet
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    await ask(client, orgs, callbacks, [{"type": "fields", "inputs": [{"name": "n", "label": "N", "input_type": "text"}]}])
    assert await Notification.all().count() == 0 and await ActionToken.all().count() == 0
    # Another person's devices get nothing for the owner's conversation.
    _, member = await add_member(client, orgs.a, "ops@acme.example")
    await register_ios(client, member)
    await ask(client, orgs, callbacks, APPROVAL)
    [push] = await fakes.apns.wait_for(1)
    assert await Notification.filter(kind="approval").count() == 1
    [item] = await OutboxItem.filter(kind="push")  # written with the message: one, the owner's phone
    assert item.secret_ref == f"device:{(await Device.get(user_id=orgs.a.owner_id)).id}"
    b_session = await login(client, orgs.b.owner_email, orgs.b.owner_password)
    r = await answer(client, push.payload["action"]["message_id"], b_session, {"approved": True})
    assert r.status_code == 404


async def test_an_approval_push_lives_no_longer_than_its_token(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    import time

    session = await owner_session(client, orgs)
    await register_ios(client, session)
    await register_web(client, session, fakes.web.subscribe())
    from datetime import timedelta

    from app.kernel.timefmt import iso, utcnow

    await ask(client, orgs, callbacks, APPROVAL, expires_at=iso(utcnow() + timedelta(days=30)))
    [push] = await fakes.apns.wait_for(1)
    [web] = await fakes.web.wait_for(1)
    assert int(push.headers["apns-expiration"]) <= time.time() + 3600 + 5  # the token's hour, not the push TTL's day
    assert web.ttl is not None and 3500 <= web.ttl <= 3600


async def test_a_message_too_long_for_a_push_still_reaches_the_phone(client: Any, orgs: Orgs, fakes: Fakes, callbacks: WebhookReceiver) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    options = [{"label": f"{i}" + "L" * 190, "value": f"{i}" + "v" * 190} for i in range(10)]
    message = await ask(client, orgs, callbacks, [{"type": "text", "text": "x" * 2500}, {"type": "buttons", "options": options}])
    [push] = await fakes.apns.wait_for(1)
    assert push.payload["action"]["options"] == [] and len(push.payload["aps"]["alert"]["body"]) <= 100
    token = push.payload["action"]["token"]
    assert (await answer(client, message["id"], token, {"selection": options[3]["value"]})).status_code == 200
