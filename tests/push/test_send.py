"""Devices and sends end to end: the app's outbox worker delivers to a fake APNs (HTTP/2,
TLS, provider JWT checked) and a fake Web Push service (VAPID checked, bodies decrypted)."""

from __future__ import annotations

from typing import Any

import pytest

from app.models.chat import OutboxItem
from app.models.push import Device
from tests.conftest import Orgs, add_member, login
from tests.push.conftest import BUNDLE, Fakes, ios_token, register_ios, register_web


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def owner_session(client: Any, orgs: Orgs) -> str:
    return await login(client, orgs.a.owner_email, orgs.a.owner_password)


async def send(client: Any, orgs: Orgs, **body: Any) -> Any:
    body.setdefault("email", orgs.a.owner_email)
    body.setdefault("title", "Deploy finished")
    body.setdefault("body", "main is live")
    return await client.post("/api/push/send", json=body, headers=orgs.a.headers)


# ---------------------------------------------------------------- devices


async def test_register_list_and_delete_devices(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    token = ios_token()
    r = await client.post(
        "/api/v1/push/devices",
        json={"platform": "ios", "token": token.upper(), "bundle_id": BUNDLE, "environment": "sandbox", "name": "iPhone"},
        headers=auth(session),
    )
    assert r.status_code == 201
    phone = (await r.get_json())["device"]
    assert phone["platform"] == "ios" and phone["environment"] == "sandbox" and phone["name"] == "iPhone"
    assert phone["token_hint"] == "…" + token[-8:] and token not in str(phone)  # never the whole token
    browser = await register_web(client, session, fakes.web.subscribe())
    listed = (await (await client.get("/api/v1/push/devices", headers=auth(session))).get_json())["devices"]
    assert [d["id"] for d in listed] == [phone["id"], browser["id"]]
    # The same token again is the same device, refreshed.
    again = await client.post("/api/v1/push/devices", json={"platform": "ios", "token": token, "environment": "production"}, headers=auth(session))
    assert again.status_code == 200
    assert (await again.get_json())["device"]["id"] == phone["id"]
    assert await Device.filter(organization_id=orgs.a.id).count() == 2
    assert (await Device.get(id=phone["id"])).environment == "production"
    # With an API key: anyone's devices by email.
    by_email = await client.get(f"/api/push/devices?email={orgs.a.owner_email.upper()}", headers=orgs.a.headers)
    assert by_email.status_code == 200 and (await by_email.get_json())["total"] == 2
    assert (await client.delete(f"/api/v1/push/devices/{phone['id']}", headers=auth(session))).status_code == 200
    assert (await client.delete(f"/api/v1/push/devices/{phone['id']}", headers=auth(session))).status_code == 404
    assert await Device.filter(organization_id=orgs.a.id).count() == 1


async def test_newest_owner_wins(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    owner = await owner_session(client, orgs)
    member_id, member = await add_member(client, orgs.a, "sam@acme.example")
    token = ios_token()
    first = await register_ios(client, owner, token)
    second = await register_ios(client, member, token)  # the phone changed hands
    assert first["id"] == second["id"]
    device = await Device.get(id=first["id"])
    assert device.user_id == member_id
    assert (await (await client.get("/api/v1/push/devices", headers=auth(owner))).get_json())["devices"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"platform": "ios", "token": "xyz"}, "token"),
        ({"platform": "ios", "token": "ab" * 31 + "a"}, "token"),
        ({"platform": "ios", "token": "ab" * 32, "environment": "staging"}, "environment"),
        ({"platform": "ios", "token": "ab" * 32, "bundle_id": "not a bundle"}, "bundle_id"),
        ({"platform": "android", "token": "ab" * 32}, "platform"),
        ({"platform": "web"}, "subscription"),
        ({"platform": "web", "subscription": {"endpoint": "ftp://push.example/x", "keys": {}}}, "subscription.endpoint"),
        ({"platform": "web", "subscription": {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}}, "subscription.keys.p256dh"),
    ],
)
async def test_bad_devices_are_422(client: Any, orgs: Orgs, fakes: Fakes, body: dict[str, Any], field: str) -> None:
    session = await owner_session(client, orgs)
    r = await client.post("/api/v1/push/devices", json=body, headers=auth(session))
    assert r.status_code == 422, await r.get_data(as_text=True)
    error = (await r.get_json())["error"]
    assert error["code"] == "validation_failed" and field in error["details"]
    assert await Device.all().count() == 0


async def test_web_endpoints_must_be_https_without_the_private_setting(orgs: Orgs, fakes: Fakes, settings: Any) -> None:
    from app.kernel.auth import authenticate_token
    from app.kernel.errors import ValidationFailed
    from app.services import push_devices

    principal = await authenticate_token(orgs.a.api_key)
    sub = fakes.web.subscribe()
    strict = settings.with_overrides(allow_private_webhooks=False)
    body = push_devices.DeviceInput(platform="web", subscription=sub)
    with pytest.raises(ValidationFailed) as refused:
        await push_devices._check(body, allow_private=strict.allow_private_webhooks)
    assert "subscription.endpoint" in refused.value.details
    checked = await push_devices._check(body, allow_private=True)
    assert checked.token == sub["endpoint"] and principal.org_id == orgs.a.id


async def test_devices_need_a_person_and_stay_in_their_organization(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    r = await client.post("/api/v1/push/devices", json={"platform": "ios", "token": ios_token()}, headers=orgs.a.headers)
    assert r.status_code == 403
    session = await owner_session(client, orgs)
    device = await register_ios(client, session)
    b_session = await login(client, orgs.b.owner_email, orgs.b.owner_password)
    assert (await client.delete(f"/api/v1/push/devices/{device['id']}", headers=auth(b_session))).status_code == 404
    r = await client.get(f"/api/push/devices?email={orgs.a.owner_email}", headers=orgs.b.headers)
    assert r.status_code == 404
    assert (await client.get("/api/push/devices", headers=orgs.a.headers)).status_code == 422


async def test_vapid_public_key_is_the_configured_one(client: Any, fakes: Fakes) -> None:
    r = await client.get("/api/v1/push/vapid-public-key")
    assert r.status_code == 200
    assert fakes.web.vapid_public_key is not None
    import base64

    key = (await r.get_json())["public_key"]
    assert base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) == fakes.web.vapid_public_key


# ---------------------------------------------------------------- send


async def test_send_reaches_a_phone_and_a_browser(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    phone = await register_ios(client, session)
    await register_web(client, session, fakes.web.subscribe())
    r = await send(client, orgs, priority="high", sound="chime.caf", badge=3, data={"order": 42})
    assert r.status_code == 200, await r.get_data(as_text=True)
    body = await r.get_json()
    assert body["success"] is True and body["email"] == orgs.a.owner_email
    detail = await client.get(f"/api/push/notifications/{body['notification_id']}", headers=orgs.a.headers)
    notification = (await detail.get_json())["notification"]
    assert (body["devices_succeeded"], body["devices_failed"], body["total_devices"]) == (2, 0, 2), [(d["status"], d["reason"]) for d in notification["devices"]] + [r.status for r in fakes.web.rejected]
    assert body["notification_id"].startswith("ntf_")
    [push] = fakes.apns.received
    assert push.token == (await Device.get(id=phone["id"])).token
    assert push.topic == BUNDLE and push.push_type == "alert" and push.headers["apns-priority"] == "10"
    aps = push.payload["aps"]
    assert aps["alert"] == {"title": "Deploy finished", "body": "main is live"}
    assert aps["interruption-level"] == "time-sensitive" and aps["sound"] == "chime.caf" and aps["badge"] == 3
    assert push.payload["data"] == {"order": 42} and push.payload["notification_id"] == body["notification_id"]
    [web] = fakes.web.received
    assert web.payload["title"] == "Deploy finished" and web.payload["data"] == {"order": 42}
    assert web.urgency == "high" and web.ttl > 0
    assert web.vapid["sub"] == "mailto:ops@example.com"
    assert notification["summary"]["sent"] == 2 and {d["status"] for d in notification["devices"]} == {"sent"}
    assert {d["channel"] for d in notification["devices"]} == {"apns", "webpush"}


@pytest.mark.parametrize(
    "priority, apns_priority, level, urgency",
    [
        ("critical", "10", "critical", "high"),
        ("high", "10", "time-sensitive", "high"),
        ("medium", "10", "active", "normal"),
        ("normal", "10", "active", "normal"),
        ("low", "5", "passive", "low"),
    ],
)
async def test_priorities(client: Any, orgs: Orgs, fakes: Fakes, priority: str, apns_priority: str, level: str, urgency: str) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    await register_web(client, session, fakes.web.subscribe())
    r = await send(client, orgs, priority=priority)
    assert (await r.get_json())["devices_succeeded"] == 2
    [push] = fakes.apns.received
    assert push.headers["apns-priority"] == apns_priority and push.payload["aps"]["interruption-level"] == level
    if priority == "critical":
        assert push.payload["aps"]["sound"] == {"critical": 1, "name": "default", "volume": 1.0}
    assert fakes.web.received[0].urgency == urgency


async def test_sandbox_devices_go_to_the_sandbox_host_over_one_connection(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session, environment="sandbox")
    for _ in range(3):
        assert (await (await send(client, orgs)).get_json())["devices_succeeded"] == 1
    assert len(fakes.sandbox.received) == 3 and fakes.apns.received == []
    assert fakes.sandbox.connections == 1  # the HTTP/2 connection is kept and reused


async def test_send_errors(client: Any, orgs: Orgs, fakes: Fakes) -> None:
    session = await owner_session(client, orgs)
    await register_ios(client, session)
    before = await OutboxItem.all().count()
    r = await send(client, orgs, email="nobody@acme.example")
    assert r.status_code == 404 and (await r.get_json())["error"]["code"] == "not_found"
    r = await send(client, orgs, priority="urgent")
    assert r.status_code == 422 and "priority" in (await r.get_json())["error"]["details"]
    r = await send(client, orgs, title="")
    assert r.status_code == 422 and "title" in (await r.get_json())["error"]["details"]
    r = await send(client, orgs, data={"blob": "x" * 5000})  # over APNs' 4 KB
    assert r.status_code == 422 and "payload" in (await r.get_json())["error"]["details"]
    r = await client.post("/api/push/send", data="{nope", headers={**orgs.a.headers, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert await OutboxItem.all().count() == before  # nothing was queued
    member_id, member = await add_member(client, orgs.a, "lee@acme.example")
    r = await send(client, orgs, email="lee@acme.example")
    assert r.status_code == 200
    assert (await r.get_json())["total_devices"] == 0
    r = await client.post("/api/push/send", json={"email": orgs.a.owner_email, "title": "t", "body": "b"}, headers=auth(member))
    assert r.status_code == 403  # members lack push:write
    r = await send(client, orgs, email=orgs.b.owner_email)  # another organization's person
    assert r.status_code == 404
    assert fakes.apns.received == []
