"""What happens after a push is queued: dead tokens, their race with re-registration,
retries, bulk fan-out, and a server without APNs."""

from __future__ import annotations

import asyncio
from typing import Any

from app.models.chat import OutboxItem
from app.models.push import Device, Notification
from tests.conftest import Orgs, add_member, login, wait_for
from tests.push.conftest import Fakes, register_ios, register_web
from tests.push.test_send import auth, owner_session, send


async def detail(client: Any, orgs: Orgs, notification_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/push/notifications/{notification_id}", headers=orgs.a.headers)
    assert r.status_code == 200
    return (await r.get_json())["notification"]  # type: ignore[no-any-return]


async def test_dead_tokens_remove_their_devices(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    gone = await register_ios(client, session)
    wrong_app = await register_ios(client, session)
    bad = await register_ios(client, session)
    kept = await register_ios(client, session)
    browser = await register_web(client, session, sub := fakes.web.subscribe())
    tokens = {d["id"]: (await Device.get(id=d["id"])).token for d in (gone, wrong_app, bad, kept)}
    fakes.apns.fail(tokens[gone["id"]], 410, "Unregistered")
    fakes.apns.fail(tokens[wrong_app["id"]], 400, "DeviceTokenNotForTopic")
    fakes.apns.fail(tokens[bad["id"]], 400, "BadDeviceToken")
    fakes.web.fail(sub["endpoint"], 410)
    body = await (await send(client, orgs)).get_json()
    assert (body["devices_succeeded"], body["devices_failed"], body["total_devices"]) == (1, 4, 5)
    remaining = await Device.filter(organization_id=orgs.a.id).values_list("id", flat=True)
    assert remaining == [kept["id"]]
    notification = await detail(client, orgs, body["notification_id"])
    statuses = {d["device_id"]: d["status"] for d in notification["devices"]}
    assert statuses == {gone["id"]: "token_removed", wrong_app["id"]: "token_removed", bad["id"]: "token_removed",
                        browser["id"]: "token_removed", kept["id"]: "sent"}
    reasons = {d["device_id"]: d["reason"] for d in notification["devices"]}
    assert "Unregistered" in reasons[gone["id"]] and "410" in reasons[browser["id"]]


async def test_other_refusals_fail_without_removing_the_device(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    fakes.apns.fail((await Device.get(id=phone["id"])).token, 400, "BadCollapseId")
    body = await (await send(client, orgs)).get_json()
    assert body["devices_failed"] == 1
    assert await Device.filter(id=phone["id"]).exists()
    [d] = (await detail(client, orgs, body["notification_id"]))["devices"]
    assert d["status"] == "failed" and "BadCollapseId" in d["reason"] and d["status_code"] == 400


async def test_re_registration_wins_over_a_dead_token_report(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    """The phone registers its token again while a push to it is in flight and is then reported
    dead: the newer registration wins, the device stays."""
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    token = (await Device.get(id=phone["id"])).token
    fakes.apns.fail(token, 410, "Unregistered")
    fakes.apns.delay(1.0)
    sending = asyncio.create_task(send(client, orgs))

    async def claimed() -> bool:
        return await OutboxItem.filter(channel="apns", status="delivering").exists()

    await wait_for(claimed)
    await register_ios(client, session, token)  # the app started again and re-registered
    body = await (await sending).get_json()
    assert body["devices_failed"] == 1
    assert await Device.filter(id=phone["id"], token=token).exists()
    [d] = (await detail(client, orgs, body["notification_id"]))["devices"]
    assert d["status"] == "failed" and "Unregistered" in d["reason"]  # reported dead, but kept


async def test_a_changed_token_is_not_removed_by_a_report_about_the_old_one(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    sub = fakes.web.subscribe()
    browser = await register_web(client, session, sub)
    fakes.web.fail(sub["endpoint"], 404)
    fakes.web.delay(1.0)
    sending = asyncio.create_task(send(client, orgs))

    async def claimed() -> bool:
        return await OutboxItem.filter(channel="webpush", status="delivering").exists()

    await wait_for(claimed)
    # The row changes token under the in-flight push (as when a device's token rotates).
    await Device.filter(id=browser["id"]).update(token=sub["endpoint"] + "-rotated")
    assert (await (await sending).get_json())["devices_failed"] == 1
    assert await Device.filter(id=browser["id"]).exists()


async def test_transient_failures_are_retried(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    sub = fakes.web.subscribe()
    await register_web(client, session, sub)
    fakes.apns.fail((await Device.get(id=phone["id"])).token, 503, "ServiceUnavailable", times=1)
    fakes.web.fail(sub["endpoint"], 429, times=1, retry_after=1)
    body = await (await send(client, orgs)).get_json()
    # The first attempts failed: both still queued, retrying.
    assert (body["devices_succeeded"], body["devices_failed"], body["devices_queued"]) == (0, 0, 2)
    await fakes.apns.wait_for(1)
    await fakes.web.wait_for(1)

    async def all_sent() -> bool:
        return (await detail(client, orgs, body["notification_id"]))["summary"]["sent"] == 2

    await wait_for(all_sent)
    devices = (await detail(client, orgs, body["notification_id"]))["devices"]
    assert [d["attempts"] for d in devices] == [2, 2]


async def test_a_slow_push_service_times_out_and_is_retried(client: Any, orgs: Orgs, fakes: Fakes, app: Any) -> None:
    worker = app.extensions["outbox"]
    channel = worker.channels["webpush"]
    channel.timeout = 0.3  # a push service that does not answer in time
    session = await owner_session(client, orgs)
    await register_web(client, session, fakes.web.subscribe())
    fakes.web.delay(1.0)
    body = await (await send(client, orgs)).get_json()
    assert body["devices_queued"] == 1
    [item] = await OutboxItem.filter(group_id=body["notification_id"])
    assert "timeout" in (item.last_error or "")


async def test_bulk_answers_at_once_and_fans_out(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    owner = await owner_session(client, orgs)
    _, member = await add_member(client, orgs.a, "kim@acme.example")
    await register_ios(client, owner)
    await register_web(client, owner, fakes.web.subscribe())
    await register_ios(client, member)
    r = await client.post(
        "/api/push/send/bulk",
        json={"recipients": [orgs.a.owner_email, "KIM@acme.example", "ghost@acme.example", orgs.a.owner_email],
              "title": "Announcement", "body": "New features available", "priority": "low"},
        headers=orgs.a.headers,
    )
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    assert body["total_recipients"] == 3 and body["recipients_queued"] == 2 and body["total_devices"] == 3
    owner_result, kim, ghost = body["results"]
    assert owner_result["success"] and owner_result["total_devices"] == 2 and kim["email"] == "kim@acme.example"
    assert ghost == {"email": "ghost@acme.example", "success": False,
                     "error": {"code": "not_found", "message": "No member of this organization has this email address."}}
    await fakes.apns.wait_for(2)
    await fakes.web.wait_for(1)
    assert {p.payload["aps"]["alert"]["title"] for p in fakes.apns.received} == {"Announcement"}
    assert {p.headers["apns-priority"] for p in fakes.apns.received} == {"5"}

    async def sent() -> bool:
        return (await detail(client, orgs, owner_result["notification_id"]))["summary"]["sent"] == 2

    await wait_for(sent)
    assert await Notification.filter(fanout="pending").count() == 0


async def test_bulk_validation(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    async def bulk(**body: Any) -> Any:
        return await client.post("/api/push/send/bulk", json={"title": "t", "body": "b", **body}, headers=orgs.a.headers)

    assert (await bulk(recipients=[])).status_code == 422
    assert (await bulk(recipients="a@b.example")).status_code == 422
    r = await bulk(recipients=[f"p{i}@acme.example" for i in range(1001)])
    assert r.status_code == 422 and "recipients" in (await r.get_json())["error"]["details"]
    r = await bulk(recipients=["ok@acme.example", "not-an-email"])
    assert r.status_code == 422 and "recipients[1]" in (await r.get_json())["error"]["details"]
    r = await bulk(recipients=[orgs.a.owner_email], priority="loud")
    assert r.status_code == 422
    assert await Notification.all().count() == 0


async def test_pending_fan_outs_are_picked_up(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    """A bulk send's notifications are durable before the answer. One still pending, as when
    the process stopped before fanning it out, is queued by the next pass (which also runs at
    every start)."""
    from app.kernel.ids import new_id
    from app.kernel.timefmt import utcnow
    from app.services import push

    session = await owner_session(client, orgs)
    await register_ios(client, session)
    left = await Notification.create(
        id=new_id("notification"), organization_id=orgs.a.id, user_id=orgs.a.owner_id, email=orgs.a.owner_email,
        kind="alert", title="Left over", body="from before the restart", fanout="pending", created_at=utcnow(),
    )
    push.Fanout.nudge()
    [received] = await fakes.apns.wait_for(1)
    assert received.payload["notification_id"] == left.id
    assert (await Notification.get(id=left.id)).fanout == "queued"


async def test_without_apns_configured_ios_devices_fail_at_once(client: Any, orgs: Orgs, fakes: Fakes, settings: Any) -> None:
    from app.services import push_queue

    push_queue.configure(settings.with_overrides(apns_key_file=""))
    try:
        session = await owner_session(client, orgs)
        await register_ios(client, session)
        await register_web(client, session, fakes.web.subscribe())
        body = await (await send(client, orgs)).get_json()
        assert (body["devices_succeeded"], body["devices_failed"]) == (1, 1)
        devices = (await detail(client, orgs, body["notification_id"]))["devices"]
        apns = next(d for d in devices if d["channel"] == "apns")
        assert apns["status"] == "failed" and "APNs is not configured" in apns["reason"] and apns["attempts"] == 0
    finally:
        push_queue.configure(settings)


async def test_removing_a_member_forgets_their_devices(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    member_id, member = await add_member(client, orgs.a, "pat@acme.example")
    await register_ios(client, member)
    assert (await client.delete(f"/api/v1/organization/members/{member_id}", headers=orgs.a.headers)).status_code == 200
    assert await Device.filter(user_id=member_id).count() == 0


async def test_notifications_are_per_organization(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    body = await (await send(client, orgs)).get_json()
    r = await client.get(f"/api/push/notifications/{body['notification_id']}", headers=orgs.b.headers)
    assert r.status_code == 404
    b_session = await login(client, orgs.b.owner_email, orgs.b.owner_password)
    r = await client.get(f"/api/push/notifications/{body['notification_id']}", headers=auth(b_session))
    assert r.status_code == 404


async def test_a_device_that_changes_hands_does_not_get_the_previous_owners_pushes(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    owner = await owner_session(client, orgs)
    phone = await register_ios(client, owner)
    token = (await Device.get(id=phone["id"])).token
    fakes.apns.fail(token, 503, "ServiceUnavailable")  # the owner's push keeps retrying
    body = await (await send(client, orgs)).get_json()
    assert body["devices_queued"] == 1
    _, member = await add_member(client, orgs.a, "new-owner@acme.example")
    await register_ios(client, member, token)  # the phone now belongs to someone else
    [item] = await OutboxItem.filter(group_id=body["notification_id"])
    assert item.status == "cancelled" and "registered by someone else" in (item.last_error or "")
    [d] = (await detail(client, orgs, body["notification_id"]))["devices"]
    assert d["status"] == "cancelled"


async def test_device_tokens_stay_out_of_the_delivery_log(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    sub = fakes.web.subscribe()
    browser = await register_web(client, session, sub)
    body = await (await send(client, orgs)).get_json()
    assert body["devices_succeeded"] == 2
    token = (await Device.get(id=phone["id"])).token
    items = await OutboxItem.filter(group_id=body["notification_id"])
    assert {i.target for i in items} == {phone["id"], browser["id"]}
    assert not any(token in i.target or sub["endpoint"] in i.target for i in items)
    listed = await client.get("/api/v1/deliveries", headers=orgs.a.headers)
    assert {d["target"] for d in (await listed.get_json())["deliveries"]} >= {phone["id"], browser["id"]}
    # Pushes are for those who may send them: a key without push:write does not see them.
    r = await client.post("/api/v1/api-keys", json={"name": "ops", "scopes": ["agents:read", "agents:write"]}, headers=orgs.a.headers)
    ops = {"Authorization": f"Bearer {(await r.get_json())['api_key']['key']}"}
    listed = await client.get("/api/v1/deliveries", headers=ops)
    assert [d for d in (await listed.get_json())["deliveries"] if d["channel"] in ("apns", "webpush")] == []
    assert (await client.get(f"/api/v1/deliveries/{items[0].id}", headers=ops)).status_code == 403
    assert (await client.post(f"/api/v1/deliveries/{items[0].id}/retry", headers=ops)).status_code == 403


async def test_odd_values_are_422_not_500(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    for priority in (["high"], {"a": 1}, 3, True):
        r = await send(client, orgs, priority=priority)
        assert r.status_code == 422 and "priority" in (await r.get_json())["error"]["details"], priority
        r = await client.post("/api/push/send/bulk", json={"recipients": [orgs.a.owner_email], "title": "t", "body": "b",
                                                            "priority": priority}, headers=orgs.a.headers)
        assert r.status_code == 422
    for bad in ({"email": ["x"]}, {"title": 5}, {"body": None}, {"badge": -1}, {"badge": True}, {"sound": ""}, {"data": [1]}):
        r = await send(client, orgs, **bad)
        assert r.status_code in (404, 422), (bad, r.status_code)
        assert (await r.get_json())["error"]["code"] in ("validation_failed", "not_found")
    session = await owner_session(client, orgs)
    for body in ({"platform": ["ios"]}, {"platform": "ios", "token": 12}, {"platform": "web", "subscription": {"endpoint": 1, "keys": []}},
                 {"platform": "ios", "token": "ab" * 32, "name": 7}):
        r = await client.post("/api/v1/push/devices", json=body, headers=auth(session))
        assert r.status_code == 422, body


async def test_times_are_iso_8601(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    body = await (await send(client, orgs)).get_json()
    notification = await detail(client, orgs, body["notification_id"])
    import re

    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    assert iso.match(notification["created_at"])
    assert all(iso.match(d["updated_at"]) for d in notification["devices"])


async def test_the_wait_also_reads_the_rows(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    """A single send's wait ends when the rows say every device was tried, even when this
    process's worker did not do it (another gateway's did)."""
    import time

    from app import outbox

    session = await owner_session(client, orgs)
    await register_ios(client, session)
    body = await (await send(client, orgs)).get_json()
    [item] = await OutboxItem.filter(group_id=body["notification_id"])
    started = time.monotonic()
    await outbox.wait_attempted([item.id], timeout=5)  # no worker will signal it now
    assert time.monotonic() - started < 1.5
