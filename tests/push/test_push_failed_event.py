"""``push.failed`` for event subscriptions: a device's push that fails for good is announced,
shaped as that device is in the notification's REST answer."""

from __future__ import annotations

from typing import Any, AsyncIterator

import pytest

from tests.conftest import DrainOutbox, Orgs
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.push.conftest import Fakes, register_web
from tests.push.test_send import owner_session, send


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def test_a_failed_push_is_announced(
    client: Any, orgs: Orgs, fakes: Fakes, receiver: WebhookReceiver, drain_outbox: DrainOutbox
) -> None:
    r = await client.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["push.failed"]}, headers=orgs.a.headers)
    receiver.secrets.append((await r.get_json())["webhook"]["secret"])
    session = await owner_session(client, orgs)
    gone = await register_web(client, session, dead := fakes.web.subscribe())
    await register_web(client, session, fakes.web.subscribe())  # this one works
    fakes.web.fail(dead["endpoint"], 410)
    sent = await (await send(client, orgs)).get_json()
    assert (sent["devices_succeeded"], sent["devices_failed"]) == (1, 1)
    await drain_outbox()
    await receiver.wait_for(lambda rx: len(rx.acknowledged) == 1)

    [got] = receiver.received
    assert got.signed_with and got.headers["X-Switchboard-Event"] == "push.failed"
    event = got.json
    assert (event["event"], event["organization_id"]) == ("push.failed", orgs.a.id)
    shown = await (await client.get(f"/api/push/notifications/{sent['notification_id']}", headers=orgs.a.headers)).get_json()
    [device] = [d for d in shown["notification"]["devices"] if d["device_id"] == gone["id"]]
    data = event["data"]
    assert data.pop("notification_id") == sent["notification_id"]
    assert (data.pop("kind"), data.pop("message_id")) == ("alert", None)
    # ``updated_at`` is when the failure was recorded: the same moment, give or take a second.
    assert data.pop("updated_at").endswith("Z") and device.pop("updated_at").endswith("Z")
    assert data == device  # as the notification shows that device
    assert device["status"] == "token_removed" and "410" in device["reason"]
