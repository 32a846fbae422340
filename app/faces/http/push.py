"""Push notifications and Live Activities. As the contract has them, the sending routes
have no ``/v1`` (``/api/push/...``); what a person's own device calls is under ``/api/v1``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import NotRequired, TypedDict

from ...kernel.timefmt import iso
from ...models.push import ENVIRONMENTS, PLATFORMS, Device, LiveActivityToken, Notification
from ...services import live_activities, push, push_devices
from ...services.push import DeviceDelivery
from ..arguments import PushContent, checked
from ..results import PushSentJSON, push_sent_json
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, json_object, parse_query, settings

bp = Blueprint("push", __name__, url_prefix="/api/push")
bp_v1 = Blueprint("push_v1", __name__, url_prefix="/api/v1/push")


# Request bodies: checked by the push services (every face the same); typed here for the schema.


class DeviceRegistration(Body):
    platform: Any = Field(json_schema_extra={"enum": list(PLATFORMS)})
    token: Any = Field(None, json_schema_extra={"type": "string"}, description="iOS: the APNs device token in hex.")
    bundle_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]}, description="iOS: the app's bundle id.")
    environment: Any = Field(None, json_schema_extra={"enum": [*ENVIRONMENTS, None]}, description="iOS: APNs environment.")
    subscription: Any = Field(None, json_schema_extra={"type": ["object", "null"]},
                              description="Web: the browser's PushSubscription (endpoint, keys.p256dh, keys.auth).")
    name: Any = Field(None, json_schema_extra={"type": ["string", "null"]}, examples=["Ada's iPhone"])


class LiveActivityTokenBody(Body):
    notification_id: Any = Field(json_schema_extra={"type": "string"},
                                 description=f'The activity\'s notification id, or "{live_activities.PUSH_TO_START}".')
    token: Any = Field(json_schema_extra={"type": "string"}, description="The APNs token in hex.")
    device_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]})
    environment: Any = Field(None, json_schema_extra={"enum": [*ENVIRONMENTS, None]})
    bundle_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]})


class PushSend(PushContent):
    email: Any = Field(json_schema_extra={"type": "string"}, description="The member's email.", examples=["ada@example.com"])


class PushSendBulk(PushContent):
    recipients: Any = Field(json_schema_extra={"type": "array", "items": {"type": "string"}}, description="Members' emails.")


class LiveActivityUpdate(Body):
    notification_id: Any = Field(json_schema_extra={"type": "string"})
    content_state: Any = Field(None, json_schema_extra={"type": ["object", "null"]}, description="The activity's new state.")
    event: Any = Field(None, json_schema_extra={"enum": ["update", "end", None]})
    priority: Any = Field(None, json_schema_extra={"type": ["string", "null"]})
    dismissal_date: Any = Field(None, json_schema_extra={"type": ["string", "integer", "null"]},
                                description='With event "end": when the activity leaves the lock screen.')


class DevicesFor(Body):
    email: str = Field(description="The member's email.")


class DeviceJSON(TypedDict):
    id: str
    platform: str  # ios | web
    name: str | None
    token_hint: str | None
    environment: NotRequired[str]  # ios only
    bundle_id: NotRequired[str | None]  # ios only
    created_at: str | None
    updated_at: str | None


class PushDeliveryJSON(TypedDict):
    delivery_id: str
    channel: str
    device_id: NotRequired[str | None]
    live_activity_token_id: NotRequired[str]
    status: str  # queued | sent | failed | token_removed | cancelled
    attempts: int
    reason: str | None
    status_code: int | None
    updated_at: str | None


class NotificationJSON(TypedDict):
    id: str
    kind: str
    email: str | None
    title: str | None
    body: str | None
    priority: str | None
    data: dict[str, Any] | None
    status: str  # pending | queued
    created_at: str | None
    total_devices: int
    summary: dict[str, int]  # deliveries by status
    devices: list[PushDeliveryJSON]
    message_id: NotRequired[str]
    content_state: NotRequired[dict[str, Any] | None]
    ended_at: NotRequired[str | None]


class LiveActivityTokenJSON(TypedDict):
    id: str
    notification_id: str
    device_id: str | None
    environment: str | None
    updated_at: str | None


class DeviceRegistered(TypedDict):
    success: Literal[True]
    device: DeviceJSON


class DeviceList(TypedDict):
    devices: list[DeviceJSON]


class VapidKey(TypedDict):
    public_key: str


class MemberDevices(TypedDict):
    success: Literal[True]
    email: str
    devices: list[DeviceJSON]
    total: int


class BulkRecipientJSON(TypedDict):
    email: str
    success: bool
    notification_id: NotRequired[str | None]
    status: NotRequired[str]
    total_devices: NotRequired[int]
    error: NotRequired[dict[str, Any]]  # code and message, for this recipient only


class BulkSent(TypedDict):
    success: Literal[True]
    total_recipients: int
    recipients_queued: int
    recipients_failed: int
    total_devices: int
    results: list[BulkRecipientJSON]


class NotificationAnswer(TypedDict):
    notification: NotificationJSON


class TokenRegistered(TypedDict):
    success: Literal[True]
    token: LiveActivityTokenJSON


class ActivityUpdated(TypedDict):
    success: Literal[True]
    tokens_updated: int
    notification_id: str


def device_json(d: Device) -> DeviceJSON:
    out = DeviceJSON(
        id=d.id, platform=d.platform, name=d.name, token_hint=push_devices.token_hint(d),
        created_at=iso(d.created_at), updated_at=iso(d.updated_at),
    )
    if d.platform == "ios":
        out["environment"], out["bundle_id"] = d.environment, d.bundle_id
    return out


def delivery_json(d: DeviceDelivery) -> PushDeliveryJSON:
    out = PushDeliveryJSON(
        delivery_id=d.delivery_id, channel=d.channel, status=d.status, attempts=d.attempts, reason=d.reason,
        status_code=d.status_code, updated_at=iso(d.updated_at),
    )
    if d.live_activity_token_id:
        out["live_activity_token_id"] = d.live_activity_token_id
    else:
        out["device_id"] = d.device_id
    return out


def notification_json(n: Notification, deliveries: list[DeviceDelivery]) -> NotificationJSON:
    out: NotificationJSON = {
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
@documented("Register this device for push (a person, with a session token)", body=DeviceRegistration, status=201,
            also={200: DeviceRegistered}, errors=(402,),
            description="201 when the device is new, 200 when its token was registered already.")
async def register_device() -> tuple[DeviceRegistered, int]:
    principal = await actor()
    body = await json_object()
    given = checked(DeviceRegistration, {key: body.get(key) for key in DeviceRegistration.model_fields})
    device, created = await push_devices.register_device(
        principal,
        push_devices.DeviceInput(
            platform=given.platform,
            token=given.token,
            bundle_id=given.bundle_id,
            environment=given.environment,
            subscription=given.subscription,
            name=given.name,
        ),
        settings=settings(),
    )
    return {"success": True, "device": device_json(device)}, 201 if created else 200


@bp_v1.get("/devices")
@documented("List the caller's own devices")
async def own_devices() -> DeviceList:
    principal = await actor()
    return {"devices": [device_json(d) for d in await push_devices.list_own(principal)]}


@bp_v1.delete("/devices/<device_id>")
@documented("Remove a device (a person: their own; an admin: any)")
async def delete_device(device_id: str) -> Success:
    principal = await actor()
    await push_devices.delete_device(principal, device_id)
    return {"success": True}


@bp_v1.get("/vapid-public-key")
@documented("The Web Push public key (VAPID) browsers subscribe with", auth=False, errors=(503,))
async def vapid_public_key() -> VapidKey:
    """Public by nature: browsers subscribe with it (``applicationServerKey``)."""
    return {"public_key": push_devices.vapid_public_key(settings())}


@bp.get("/devices")
@documented("List a member's devices by email", query=DevicesFor, scope="push:write", errors=(404,))
async def devices_for_email() -> MemberDevices:
    principal = await actor()
    email = parse_query(DevicesFor).email
    spelled, devices = await push_devices.list_for_email(principal, email)
    return {"success": True, "email": spelled, "devices": [device_json(d) for d in devices], "total": len(devices)}


# ---------------------------------------------------------------- send


def _content(c: PushContent) -> push.Content:
    return push.check_content(title=c.title, body=c.body, priority=c.priority, sound=c.sound, badge=c.badge, data=c.data)


@bp.post("/send")
@documented("Send a push notification to a member's devices", body=PushSend, scope="push:write", errors=(402, 404))
async def send() -> PushSentJSON:
    principal = await actor("push:write")
    body = checked(PushSend, {"email": None, **await json_object()})
    return push_sent_json(await push.send(principal, email=body.email, content=_content(body)))


@bp.post("/send/bulk")
@documented("Send one push notification to many members", body=PushSendBulk, scope="push:write", errors=(402,))
async def send_bulk() -> BulkSent:
    principal = await actor("push:write")
    body = checked(PushSendBulk, {"recipients": None, **await json_object()})
    results = await push.send_bulk(principal, recipients=body.recipients, content=_content(body))
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
@documented("Get a notification with each device's delivery", scope="push:write")
async def get_notification(notification_id: str) -> NotificationAnswer:
    principal = await actor()
    notification, deliveries = await push.get_notification(principal, notification_id)
    return {"notification": notification_json(notification, deliveries)}


# ---------------------------------------------------------------- Live Activities


@bp_v1.post("/live-activity/tokens")
@documented("Register a Live Activity push token (a person, with a session token)", body=LiveActivityTokenBody,
            status=201, also={200: TokenRegistered}, errors=(404,),
            description="201 when the token is new, 200 when it replaced the device's previous one.")
async def register_live_activity_token() -> tuple[TokenRegistered, int]:
    principal = await actor()
    body = await json_object()
    given = checked(LiveActivityTokenBody, {key: body.get(key) for key in LiveActivityTokenBody.model_fields})
    token, created = await live_activities.register_token(
        principal,
        notification_id=given.notification_id,
        token=given.token,
        device_id=given.device_id,
        environment=given.environment,
        bundle_id=given.bundle_id,
    )
    return {"success": True, "token": _token_json(token)}, 201 if created else 200


def _token_json(t: LiveActivityToken) -> LiveActivityTokenJSON:
    return {
        "id": t.id,
        "notification_id": t.notification_id or live_activities.PUSH_TO_START,
        "device_id": t.device_id,
        "environment": t.environment,
        "updated_at": iso(t.updated_at),
    }


@bp.post("/live-activity/update")
@documented("Update or end a Live Activity", body=LiveActivityUpdate, scope="push:write", errors=(404, 409))
async def update_live_activity() -> ActivityUpdated:
    principal = await actor("push:write")
    body = await json_object()
    given = checked(LiveActivityUpdate, {key: body.get(key) for key in LiveActivityUpdate.model_fields})
    count = await live_activities.update(
        principal,
        notification_id=given.notification_id,
        content_state=given.content_state,
        event=given.event,
        priority=given.priority,
        dismissal_date=given.dismissal_date,
    )
    return {"success": True, "tokens_updated": count, "notification_id": given.notification_id}
