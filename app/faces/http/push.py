"""Push notifications and Live Activities. As the contract has them, the sending routes
have no ``/v1`` (``/api/push/...``); what a person's own device calls is under ``/api/v1``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...kernel.errors import ValidationFailed
from ...kernel.timefmt import iso
from ...models.push import Device, LiveActivityToken, Notification
from ...services import live_activities, push, push_devices
from ...services.push import DeviceDelivery
from ..arguments import PushContent, checked
from ..results import push_sent_json
from .request_io import actor, json_object, settings

bp = Blueprint("push", __name__, url_prefix="/api/push")
bp_v1 = Blueprint("push_v1", __name__, url_prefix="/api/v1/push")


def device_json(d: Device) -> dict[str, Any]:
    out: dict[str, Any] = {"id": d.id, "platform": d.platform, "name": d.name, "token_hint": push_devices.token_hint(d)}
    if d.platform == "ios":
        out["environment"], out["bundle_id"] = d.environment, d.bundle_id
    out["created_at"], out["updated_at"] = iso(d.created_at), iso(d.updated_at)
    return out


def delivery_json(d: DeviceDelivery) -> dict[str, Any]:
    out: dict[str, Any] = {"delivery_id": d.delivery_id, "channel": d.channel}
    if d.live_activity_token_id:
        out["live_activity_token_id"] = d.live_activity_token_id
    else:
        out["device_id"] = d.device_id
    out.update(status=d.status, attempts=d.attempts, reason=d.reason, status_code=d.status_code, updated_at=iso(d.updated_at))
    return out


def notification_json(n: Notification, deliveries: list[DeviceDelivery]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": n.id,
        "kind": n.kind,
        "email": n.email,
        "title": n.title,
        "body": n.body,
        "priority": n.priority,
        "data": n.data,
        "status": "pending" if n.fanout == "pending" else "queued",
        "created_at": iso(n.created_at),
        "total_devices": len(deliveries),
        "summary": push.summary(deliveries),
        "devices": [delivery_json(d) for d in deliveries],
    }
    if n.message_id:
        out["message_id"] = n.message_id
    if n.kind == "liveactivity":
        out["content_state"], out["ended_at"] = n.activity_state, iso(n.ended_at) if n.ended_at else None
    return out


# ---------------------------------------------------------------- devices


@bp_v1.post("/devices")
async def register_device() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    device, created = await push_devices.register_device(
        principal,
        push_devices.DeviceInput(
            platform=body.get("platform"),
            token=body.get("token"),
            bundle_id=body.get("bundle_id"),
            environment=body.get("environment"),
            subscription=body.get("subscription"),
            name=body.get("name"),
        ),
        settings=settings(),
    )
    return {"success": True, "device": device_json(device)}, 201 if created else 200


@bp_v1.get("/devices")
async def own_devices() -> dict[str, Any]:
    principal = await actor()
    return {"devices": [device_json(d) for d in await push_devices.list_own(principal)]}


@bp_v1.delete("/devices/<device_id>")
async def delete_device(device_id: str) -> dict[str, Any]:
    principal = await actor()
    await push_devices.delete_device(principal, device_id)
    return {"success": True}


@bp_v1.get("/vapid-public-key")
async def vapid_public_key() -> dict[str, Any]:
    """Public by nature: browsers subscribe with it (``applicationServerKey``)."""
    return {"public_key": push_devices.vapid_public_key(settings())}


@bp.get("/devices")
async def devices_for_email() -> dict[str, Any]:
    principal = await actor()
    email = request.args.get("email")
    if not email:
        raise ValidationFailed("Query parameters are invalid.", details={"email": ["is required"]})
    spelled, devices = await push_devices.list_for_email(principal, email)
    return {"success": True, "email": spelled, "devices": [device_json(d) for d in devices], "total": len(devices)}


# ---------------------------------------------------------------- send


def _content(body: dict[str, Any]) -> push.Content:
    c = checked(PushContent, body)
    return push.check_content(title=c.title, body=c.body, priority=c.priority, sound=c.sound, badge=c.badge, data=c.data)


@bp.post("/send")
async def send() -> dict[str, Any]:
    principal = await actor("push:write")
    body = await json_object()
    return push_sent_json(await push.send(principal, email=body.get("email"), content=_content(body)))


@bp.post("/send/bulk")
async def send_bulk() -> dict[str, Any]:
    principal = await actor("push:write")
    body = await json_object()
    results = await push.send_bulk(principal, recipients=body.get("recipients"), content=_content(body))
    accepted = [r for r in results if r.error is None]
    return {
        "success": True,
        "total_recipients": len(results),
        "recipients_queued": len(accepted),
        "recipients_failed": len(results) - len(accepted),
        "total_devices": sum(r.total_devices for r in accepted),
        "results": [
            {"email": r.email, "success": True, "notification_id": r.notification_id, "status": "queued",
             "total_devices": r.total_devices}
            if r.error is None
            else {"email": r.email, "success": False, "error": {"code": r.error, "message": r.message}}
            for r in results
        ],
    }


@bp.get("/notifications/<notification_id>")
async def get_notification(notification_id: str) -> dict[str, Any]:
    principal = await actor()
    notification, deliveries = await push.get_notification(principal, notification_id)
    return {"notification": notification_json(notification, deliveries)}


# ---------------------------------------------------------------- Live Activities


@bp_v1.post("/live-activity/tokens")
async def register_live_activity_token() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    token, created = await live_activities.register_token(
        principal,
        notification_id=body.get("notification_id"),
        token=body.get("token"),
        device_id=body.get("device_id"),
        environment=body.get("environment"),
        bundle_id=body.get("bundle_id"),
    )
    return {"success": True, "token": _token_json(token)}, 201 if created else 200


def _token_json(t: LiveActivityToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "notification_id": t.notification_id or live_activities.PUSH_TO_START,
        "device_id": t.device_id,
        "environment": t.environment,
        "updated_at": iso(t.updated_at),
    }


@bp.post("/live-activity/update")
async def update_live_activity() -> dict[str, Any]:
    principal = await actor("push:write")
    body = await json_object()
    count = await live_activities.update(
        principal,
        notification_id=body.get("notification_id"),
        content_state=body.get("content_state"),
        event=body.get("event"),
        priority=body.get("priority"),
        dismissal_date=body.get("dismissal_date"),
    )
    return {"success": True, "tokens_updated": count, "notification_id": body["notification_id"]}
