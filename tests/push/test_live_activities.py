"""Live Activities: push-to-start, update tokens, updates and the end, as APNs receives them."""

from __future__ import annotations

from typing import Any

import pytest

from app.models.push import LiveActivityToken, Notification
from tests.conftest import Orgs, login
from tests.push.conftest import BUNDLE, Fakes, ios_token, register_ios
from tests.push.test_send import auth, owner_session, send

STATE = {"itemTitle": "Order #1234", "status": "Packing", "progressPercent": 10, "currentStep": 1, "totalSteps": 4}


async def register_token(client: Any, session: str, notification_id: str, token: str, **extra: Any) -> Any:
    return await client.post(
        "/api/v1/push/live-activity/tokens",
        json={"notification_id": notification_id, "token": token, **extra},
        headers=auth(session),
    )


async def update(client: Any, orgs: Orgs, notification_id: str, **body: Any) -> Any:
    body.setdefault("content_state", {"itemTitle": "Order #1234", "status": "In transit", "progressPercent": 75})
    return await client.post("/api/push/live-activity/update", json={"notification_id": notification_id, **body}, headers=orgs.a.headers)


async def start(client: Any, orgs: Orgs, fakes: Fakes) -> tuple[str, str, dict[str, Any]]:
    """A phone with a push-to-start token, an activity started on it: (session, id, start push)."""
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    r = await register_token(client, session, "push_to_start", start_token := ios_token(), device_id=phone["id"])
    assert r.status_code == 201, await r.get_data(as_text=True)
    r = await send(client, orgs, title="Order #1234", body="We are on it", data={"workflow_state": STATE})
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    assert (body["devices_succeeded"], body["total_devices"]) == (1, 1)
    [push] = await fakes.apns.wait_for(1)
    assert push.token == start_token
    return session, body["notification_id"], push.__dict__


async def test_start_update_and_end(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session, activity, started = await start(client, orgs, fakes)
    headers, payload = started["headers"], started["payload"]
    assert headers["apns-push-type"] == "liveactivity" and headers["apns-topic"] == f"{BUNDLE}.push-type.liveactivity"
    aps = payload["aps"]
    assert aps["event"] == "start" and aps["content-state"] == STATE
    assert aps["attributes-type"] == "WorkflowActivityAttributes" and aps["attributes"]["notificationId"] == activity
    assert aps["alert"] == {"title": "Order #1234", "body": "We are on it"}
    assert aps["stale-date"] == aps["timestamp"] + 120
    # The activity on the phone registers its update token.
    update_token = ios_token()
    assert (await register_token(client, session, activity, update_token)).status_code == 201
    r = await update(client, orgs, activity)
    assert r.status_code == 200
    assert await r.get_json() == {"success": True, "tokens_updated": 1, "notification_id": activity}
    [_, pushed] = await fakes.apns.wait_for(2)
    assert pushed.token == update_token and pushed.push_type == "liveactivity"
    assert pushed.payload["aps"]["event"] == "update" and pushed.payload["aps"]["content-state"]["progressPercent"] == 75
    assert pushed.payload["aps"]["timestamp"] > aps["timestamp"]
    assert pushed.headers["apns-priority"] == "10" and "alert" not in pushed.payload["aps"]
    # Two updates in the same second still get increasing timestamps.
    for percent in (80, 85):
        r = await update(client, orgs, activity, priority="low", content_state={**STATE, "progressPercent": percent})
        assert r.status_code == 200
    pushes = await fakes.apns.wait_for(4)
    stamps = [p.payload["aps"]["timestamp"] for p in pushes]
    assert stamps == sorted(set(stamps))  # strictly increasing
    assert [p.headers["apns-priority"] for p in pushes[2:]] == ["5", "5"]
    r = await update(client, orgs, activity, event="end", dismissal_date=1893456000,
                     content_state={"itemTitle": "Complete", "status": "Delivered", "progressPercent": 100})
    assert r.status_code == 200
    end = (await fakes.apns.wait_for(5))[-1]
    assert end.payload["aps"]["event"] == "end" and end.payload["aps"]["dismissal-date"] == 1893456000
    assert end.payload["aps"]["timestamp"] > stamps[-1]
    assert (await Notification.get(id=activity)).ended_at is not None
    r = await update(client, orgs, activity)
    assert r.status_code == 409 and (await r.get_json())["error"]["code"] == "activity_ended"
    assert (await register_token(client, session, activity, ios_token())).status_code == 409


async def test_update_tokens_rotate(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session, activity, _ = await start(client, orgs, fakes)
    old, new = ios_token(), ios_token()
    assert (await register_token(client, session, activity, old)).status_code == 201
    assert (await register_token(client, session, activity, new)).status_code == 200  # replaces it
    assert await LiveActivityToken.filter(notification_id=activity).count() == 1
    r = await update(client, orgs, activity, priority="high")
    assert (await r.get_json())["tokens_updated"] == 1
    pushed = (await fakes.apns.wait_for(2))[-1]
    assert pushed.token == new
    assert pushed.payload["aps"]["alert"] == {"title": "Order #1234", "body": "In transit"}  # high: it alerts


async def test_a_dead_update_token_is_removed(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session, activity, _ = await start(client, orgs, fakes)
    token = ios_token()
    await register_token(client, session, activity, token)
    fakes.apns.fail(token, 410, "Unregistered")
    await update(client, orgs, activity)
    await fakes.apns.wait_for_rejected(1)

    async def removed() -> bool:
        return not await LiveActivityToken.filter(notification_id=activity).exists()

    from tests.conftest import wait_for

    await wait_for(removed)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"content_state": {"status": "x", "progressPercent": 5}}, "content_state.itemTitle"),
        ({"content_state": {"itemTitle": "t", "status": "x", "progressPercent": 101}}, "content_state.progressPercent"),
        ({"content_state": {"itemTitle": "t", "status": "x", "progressPercent": "50"}}, "content_state.progressPercent"),
        ({"content_state": {"itemTitle": "t", "status": "x", "progressPercent": 5, "currentStep": 5, "totalSteps": 4}}, "content_state.currentStep"),
        ({"content_state": {"itemTitle": "t", "status": "x", "progressPercent": 5, "lastUpdate": "now"}}, "content_state.lastUpdate"),
        ({"content_state": "done"}, "content_state"),
        ({"event": "pause"}, "event"),
        ({"priority": "urgent"}, "priority"),
        ({"dismissal_date": 1893456000}, "dismissal_date"),
    ],
)
async def test_bad_updates_are_422(client: Any, orgs: Orgs, fakes: Fakes, body: dict[str, Any], field: str) -> None:
    _, activity, _ = await start(client, orgs, fakes)
    r = await update(client, orgs, activity, **body)
    assert r.status_code == 422
    assert field in (await r.get_json())["error"]["details"]


async def test_a_bad_workflow_state_starts_nothing(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    await register_token(client, session, "push_to_start", ios_token())
    r = await send(client, orgs, data={"workflow_state": {"itemTitle": "t", "progressPercent": 5}})
    assert r.status_code == 422 and "data.workflow_state.status" in (await r.get_json())["error"]["details"]
    assert await Notification.all().count() == 0


async def test_activities_belong_to_their_organization(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session, activity, _ = await start(client, orgs, fakes)
    r = await client.post("/api/push/live-activity/update", json={"notification_id": activity, "content_state": STATE},
                          headers=orgs.b.headers)
    assert r.status_code == 404
    b_session = await login(client, orgs.b.owner_email, orgs.b.owner_password)
    assert (await register_token(client, b_session, activity, ios_token())).status_code == 404
    plain = await send(client, orgs)  # an ordinary notification is not an activity
    r = await update(client, orgs, (await plain.get_json())["notification_id"])
    assert r.status_code == 404
    assert (await register_token(client, session, "ntf_doesnotexist", ios_token())).status_code == 404
    assert (await register_token(client, session, "push_to_start", "not-hex")).status_code == 422


async def test_live_activity_tokens_are_checked_like_device_tokens(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    r = await register_token(client, session, "push_to_start", ios_token(), bundle_id="com.x y\r\nx-evil: 1")
    assert r.status_code == 422 and "bundle_id" in (await r.get_json())["error"]["details"]
    r = await register_token(client, session, "push_to_start", ios_token(), environment="staging")
    assert r.status_code == 422
    r = await client.post("/api/v1/push/live-activity/tokens", json={"notification_id": "push_to_start", "token": ios_token()},
                          headers=orgs.a.headers)
    assert r.status_code == 403  # a person's, with a session token


async def test_push_to_start_tokens_follow_their_newest_owner(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    from tests.conftest import add_member

    owner = await owner_session(client, orgs)
    member_id, member = await add_member(client, orgs.a, "kai@acme.example")
    token = ios_token()
    assert (await register_token(client, owner, "push_to_start", token)).status_code == 201
    assert (await register_token(client, member, "push_to_start", token)).status_code == 200
    [row] = await LiveActivityToken.all()
    assert row.user_id == member_id
    r = await send(client, orgs, data={"workflow_state": STATE})  # the owner's activity: no phone now
    assert (await r.get_json())["total_devices"] == 0
    assert (await client.delete(f"/api/v1/organization/members/{member_id}", headers=orgs.a.headers)).status_code == 200
    assert await LiveActivityToken.all().count() == 0
