"""iOS Live Activities: tokens, updates and the end.

A phone registers its push-to-start token (``notification_id: "push_to_start"``); a send
whose ``data`` holds ``workflow_state`` starts an activity on it (``push.send``). The
started activity's update token is registered under its notification id; updates and the
end go to it. ``aps.timestamp`` strictly increases per activity (APNs drops an update
older than the one shown), and an ended activity takes no more updates (409).
"""

from __future__ import annotations

import json
from typing import Any

from channels.base import DeliveryResult

from .. import outbox
from ..kernel.auth import Principal, require_scope
from ..kernel.errors import Conflict, NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.push import Device, LiveActivityToken, Notification
from .push_devices import check_apns_token, check_bundle_id, check_environment, person_id
from .push_payloads import apns_live, check_priority, check_sizes, compact
from .push_queue import Sent, apns_headers, forget_dead, token_rows, write

__all__ = ["check_content_state", "register_token", "push_to_start_tokens", "update", "PUSH_TO_START", "EVENTS"]

PUSH_TO_START = "push_to_start"
EVENTS = ("update", "end")
MAX_TEXT = 200
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_content_state(value: Any, field: str = "content_state") -> dict[str, Any]:
    """The activity's content: itemTitle, status, progressPercent (0-100) required;
    itemSubtitle, currentStep, totalSteps, lastUpdate optional. Other keys pass through for
    apps whose content state has more."""
    if not isinstance(value, dict):
        raise ValidationFailed(details={field: ["must be an object with itemTitle, status and progressPercent"]})
    problems: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        problems.setdefault(f"{field}.{key}", []).append(message)

    for key, required in (("itemTitle", True), ("status", True), ("itemSubtitle", False)):
        if key not in value:
            if required:
                add(key, "is required")
        elif not isinstance(value[key], str) or (required and not value[key].strip()) or len(value[key]) > MAX_TEXT:
            add(key, f"must be a {'non-empty ' if required else ''}string of at most {MAX_TEXT} characters")
    if "progressPercent" not in value:
        add("progressPercent", "is required")
    elif not _is_int(value["progressPercent"]) or not 0 <= value["progressPercent"] <= 100:
        add("progressPercent", "must be an integer from 0 to 100")
    for key, low in (("currentStep", 0), ("totalSteps", 1)):
        if key in value and (not _is_int(value[key]) or not low <= value[key] <= 10_000):
            add(key, f"must be an integer from {low} to 10000")
    if "lastUpdate" in value and (not _is_int(value["lastUpdate"]) or not 0 <= value["lastUpdate"] <= _MAX_TIMESTAMP):
        add("lastUpdate", "must be a unix timestamp in seconds")
    if not problems and _is_int(value.get("currentStep")) and _is_int(value.get("totalSteps")):
        if value["currentStep"] > value["totalSteps"]:
            add("currentStep", "must not be greater than totalSteps")
    if problems:
        raise ValidationFailed(details=problems)
    return dict(value)


# ---------------------------------------------------------------- tokens


async def register_token(
    principal: Principal,
    *,
    notification_id: Any,
    token: Any,
    device_id: Any = None,
    environment: Any = None,
    bundle_id: Any = None,
) -> tuple[LiveActivityToken, bool]:
    """A phone's push-to-start token, or a running activity's update token; the newest per
    device (and activity) replaces the one before. (token, created)."""
    user_id = person_id(principal, "Live Activity tokens are registered")
    problems: dict[str, list[str]] = {}
    if not isinstance(notification_id, str) or not notification_id:
        problems["notification_id"] = [f'must be a notification id or "{PUSH_TO_START}"']
    token = check_apns_token(token, "token", problems)
    if device_id is not None and not isinstance(device_id, str):
        problems["device_id"] = ["must be a device id"]
    environment = check_environment(environment, "environment", problems) if environment is not None else None
    bundle_id = check_bundle_id(bundle_id, "bundle_id", problems)
    if problems or token is None:
        raise ValidationFailed(details=problems)
    device = None
    if device_id is not None:
        device = await Device.get_or_none(id=device_id, organization_id=principal.org_id, user_id=user_id)
        if device is None:
            raise NotFound("Device not found.")
    if notification_id == PUSH_TO_START:
        activity = None
        # A phone's push-to-start token: one row per token (its newest registration owns
        # it), or per device when the device is named (the token rotates).
        slot = f"start:{device_id}" if device_id else f"start-token:{token}"
    else:
        activity = await Notification.get_or_none(id=notification_id, organization_id=principal.org_id, user_id=user_id)
        if activity is None or activity.kind != "liveactivity":
            raise NotFound("Live Activity not found.")
        if activity.ended_at is not None:
            raise Conflict("This Live Activity has ended.", code="activity_ended")
        slot = f"update:{activity.id}:{device_id or user_id}"
    now = utcnow()
    async with atomic():
        row = await LiveActivityToken.filter(slot=slot).select_for_update().first()
        created = row is None
        if row is None:
            row = LiveActivityToken(id=new_id("live_activity_token"), slot=slot, created_at=now)
        row.organization_id, row.user_id, row.device_id = principal.org_id, user_id, device_id
        row.notification_id = activity.id if activity is not None else None
        row.token = token
        row.environment = environment or (device.environment if device is not None else "production")
        row.bundle_id = bundle_id or (device.bundle_id if device is not None else None)
        row.updated_at = now
        await row.save(force_create=created)
    return row, created


async def push_to_start_tokens(organization_id: str, user_id: str) -> list[LiveActivityToken]:
    return await LiveActivityToken.filter(
        organization_id=organization_id, user_id=user_id, notification_id__isnull=True
    ).order_by("created_at")


# ---------------------------------------------------------------- update and end


async def update(
    principal: Principal,
    *,
    notification_id: Any,
    content_state: Any,
    event: Any = None,
    priority: Any = None,
    dismissal_date: Any = None,
) -> int:
    """Queue the new state (or the end) to the activity's update tokens; how many."""
    require_scope(principal, "push:write")
    problems: dict[str, list[str]] = {}
    event = "update" if event is None else event
    if event not in EVENTS:
        problems["event"] = ['must be "update" or "end"']
    priority = check_priority(priority, "priority", problems)
    if dismissal_date is not None:
        if event != "end":
            problems["dismissal_date"] = ['is only allowed with event "end"']
        elif not _is_int(dismissal_date) or not 0 <= dismissal_date <= _MAX_TIMESTAMP:
            problems["dismissal_date"] = ["must be a unix timestamp in seconds"]
    try:
        state = check_content_state(content_state)
    except ValidationFailed as exc:
        problems.update(exc.details)
    if not isinstance(notification_id, str) or not notification_id:
        problems["notification_id"] = ["is required"]
    if problems:
        raise ValidationFailed(details=problems)
    activity = await Notification.get_or_none(id=notification_id, organization_id=principal.org_id)
    if activity is None or activity.kind != "liveactivity":
        raise NotFound("Live Activity not found.")
    alert = {"title": state["itemTitle"], "body": state["status"]} if priority in ("critical", "high") else None
    for _ in range(8):  # concurrent updates: each takes the next timestamp
        if activity.ended_at is not None:
            raise Conflict("This Live Activity has ended; start a new one.", code="activity_ended")
        now = utcnow()
        previous = activity.activity_timestamp
        timestamp = max(int(now.timestamp()), previous + 1)
        payload = apns_live(
            event=str(event), timestamp=timestamp, content_state=state, now=int(now.timestamp()),
            alert=alert, dismissal_date=dismissal_date,
        )
        check_sizes(payload, None)
        async with atomic():
            count = await Notification.filter(
                id=activity.id, ended_at__isnull=True, activity_timestamp=previous
            ).update(activity_timestamp=timestamp, activity_state=state, **({"ended_at": now} if event == "end" else {}))
            if count:
                tokens = await LiveActivityToken.filter(notification_id=activity.id).order_by("created_at")
                await write(token_rows(Sent(activity.id, activity.organization_id, activity.kind), tokens, compact(payload), apns_headers(priority, "liveactivity"), now))
                return len(tokens)
        await activity.refresh_from_db()
    raise Conflict("This Live Activity is being updated by another request; try again.", code="update_conflict")


# ---------------------------------------------------------------- outbox hooks


async def _resolve(ids: list[str]) -> dict[str, outbox.Recipient]:
    return {
        t.id: outbox.Recipient(
            target=json.dumps({"token": t.token, "environment": t.environment, "bundle_id": t.bundle_id}), record_target=False
        )
        for t in await LiveActivityToken.filter(id__in=ids)
    }


async def _forget(item: dict[str, Any], result: DeliveryResult) -> None:
    await forget_dead("live_activity_tokens", "latoken", item)


outbox.register_resolver("latoken", _resolve)
outbox.on_gone("apns", _forget)
