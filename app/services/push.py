"""Push notifications: to one person, to many, and what happened on each device.

* ``send`` writes a notification and one outbox item per device of the person (channel
  ``apns`` or ``webpush``, ``group_id`` = the notification) in one transaction, then waits
  (at most ``push_send_wait_seconds``) until each device's first attempt is recorded and
  counts what was sent, failed, or is still queued (retrying).
* ``send_bulk`` writes one notification per recipient marked ``fanout = pending`` and answers
  at once; ``fan_out`` (run by ``Fanout`` in the background, and at start, so nothing is
  lost to a restart) turns them into per-device items in chunks, each chunk one transaction.
* ``notify_interactive`` pushes an approval or a choice to the conversation's owner, with a
  one-time action token, inside the transaction that stores the interactive message.
* The per-device record is the outbox item itself (status, attempts, error); a device whose
  token the push service reported dead shows as ``token_removed``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from .. import outbox
from ..kernel.auth import Principal, require_scope
from ..kernel.db import fetch_dicts, insert_sql, placeholders, unindexed
from ..kernel.errors import NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.recurring import Recurring
from ..kernel.timefmt import iso, utcnow
from ..kernel.transactions import atomic
from ..models.chat import Interaction, Message, OutboxItem
from ..models.push import Notification
from . import action_tokens, live_activities, push_devices
from .push_queue import Bodies, Sent, apns_headers, device_rows, devices_of, settings, token_rows, web_headers, write
from .push_payloads import (
    APPROVAL_CATEGORY,
    CHOICE_CATEGORY,
    apns_alert,
    apns_live,
    check_priority,
    check_sizes,
    compact,
    web_alert,
)
from .messages import Target
from .validation import normalize_email

__all__ = [
    "Content",
    "check_content",
    "SendResult",
    "BulkResult",
    "DeviceDelivery",
    "summary",
    "STATUSES",
    "send",
    "send_bulk",
    "get_notification",
    "notify_interactive",
    "fan_out",
    "Fanout",
    "MAX_RECIPIENTS",
]

log = logging.getLogger("switchboard.push")

MAX_RECIPIENTS = 1000
MAX_TITLE = 256
MAX_BODY = 4000
FANOUT_CHUNK = 200  # notifications per fan-out transaction

# ---------------------------------------------------------------- what is sent


@dataclass(frozen=True)
class Content:
    title: str
    body: str
    priority: str = "normal"
    sound: str | None = None
    badge: int | None = None
    data: dict[str, Any] | None = None


def check_content(
    *, title: Any, body: Any, priority: Any = None, sound: Any = None, badge: Any = None, data: Any = None
) -> Content:
    problems: dict[str, list[str]] = {}
    for name, value, limit in (("title", title, MAX_TITLE), ("body", body, MAX_BODY)):
        if not isinstance(value, str) or not value.strip():
            problems[name] = ["is required and must be a non-empty string"]
        elif len(value) > limit:
            problems[name] = [f"must be at most {limit} characters"]
    priority = check_priority(priority, "priority", problems)
    if sound is not None and (not isinstance(sound, str) or not sound or len(sound) > 255):
        problems["sound"] = ["must be a sound name of 1 to 255 characters"]
    if badge is not None and (isinstance(badge, bool) or not isinstance(badge, int) or not 0 <= badge <= 99999):
        problems["badge"] = ["must be an integer from 0 to 99999"]
    if data is not None and not isinstance(data, dict):
        problems["data"] = ["must be an object"]
    if problems:
        raise ValidationFailed(details=problems)
    return Content(str(title), str(body), priority, sound, badge, data or None)


def _alert_payloads(notification_id: str, content: Content) -> tuple[dict[str, Any], dict[str, Any]]:
    fields = dict(title=content.title, body=content.body, priority=content.priority, sound=content.sound,
                  badge=content.badge, data=content.data)
    return apns_alert(notification_id, **fields), web_alert(notification_id, **fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- send


@dataclass(frozen=True)
class SendResult:
    notification_id: str
    email: str
    succeeded: int
    failed: int
    queued: int

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.queued


def _sent(n: Notification) -> Sent:
    return Sent(n.id, n.organization_id, n.kind, n.message_id)


def _notification(principal: Principal, user_id: str, email: str, kind: str, content: Content, now: datetime) -> Notification:
    return Notification(
        id=new_id("notification"),
        organization_id=principal.org_id,
        user_id=user_id,
        email=email,
        kind=kind,
        title=content.title,
        body=content.body,
        priority=content.priority,
        sound=content.sound,
        badge=content.badge,
        data=content.data,
        created_at=now,
    )


async def send(principal: Principal, *, email: Any, content: Content) -> SendResult:
    """One person's devices; with ``data.workflow_state``, a Live Activity started on them."""
    require_scope(principal, "push:write")
    if not isinstance(email, str):
        raise ValidationFailed(details={"email": ["is required"]})
    user_id, spelled = await push_devices.member_by_email(principal, email)
    now = utcnow()
    state = (content.data or {}).get("workflow_state")
    notification = _notification(principal, user_id, spelled, "liveactivity" if state is not None else "alert", content, now)
    if state is not None:
        items = await _start_activity(notification, state, content, now)
    else:
        apns, web = _alert_payloads(notification.id, content)
        check_sizes(apns, web)
        bodies = Bodies(compact(apns), compact(web), apns_headers(content.priority), web_headers(content.priority))
        async with atomic():
            await notification.save(force_create=True)
            devices = (await devices_of({(principal.org_id, user_id)})).get((principal.org_id, user_id), [])
            items = device_rows(_sent(notification), devices, bodies, now)
            await write(items)
    pending = [i["id"] for i in items if i["status"] == "pending"]
    await outbox.wait_attempted(pending, settings().push_send_wait_seconds)
    counts = summary(await _deliveries(notification.id))
    failed = counts["failed"] + counts["token_removed"] + counts["cancelled"]
    return SendResult(notification.id, spelled, counts["sent"], failed, counts["queued"])


async def _start_activity(notification: Notification, state: Any, content: Content, now: datetime) -> list[dict[str, Any]]:
    """A Live Activity started with a push-to-start push on each of the person's phones."""
    checked = live_activities.check_content_state(state, "data.workflow_state")
    timestamp = int(now.timestamp())
    payload = apns_live(
        event="start",
        timestamp=timestamp,
        content_state=checked,
        now=timestamp,
        attributes_type=settings().live_activity_attributes_type,
        attributes={"notificationId": notification.id, "title": content.title},
        alert={"title": content.title, "body": content.body},
    )
    payload["notification_id"] = notification.id
    check_sizes(payload, None)
    notification.activity_state, notification.activity_timestamp = checked, timestamp
    async with atomic():
        await notification.save(force_create=True)
        tokens = await live_activities.push_to_start_tokens(notification.organization_id, notification.user_id)
        items = token_rows(_sent(notification), tokens, compact(payload), apns_headers(content.priority, "liveactivity"), now)
        await write(items)
    return items


# ---------------------------------------------------------------- bulk


@dataclass(frozen=True)
class BulkResult:
    email: str
    notification_id: str | None = None
    total_devices: int = 0
    error: str | None = None  # a code, with its message
    message: str | None = None


def _recipients(value: Any) -> list[tuple[str, str]]:
    """(as written, key) per distinct address, in order; 422 naming each bad one."""
    if not isinstance(value, list) or not value:
        raise ValidationFailed(details={"recipients": ["must be a non-empty array of email addresses"]})
    if len(value) > MAX_RECIPIENTS:
        raise ValidationFailed(details={"recipients": [f"must hold at most {MAX_RECIPIENTS} addresses"]})
    out, seen, problems = [], set(), {}
    for i, raw in enumerate(value):
        try:
            email, key = normalize_email(raw if isinstance(raw, str) else "", f"recipients[{i}]")
        except ValidationFailed as exc:
            problems.update(exc.details)
            continue
        if key not in seen:
            seen.add(key)
            out.append((email, key))
    if problems:
        raise ValidationFailed(details=problems)
    return out


async def send_bulk(principal: Principal, *, recipients: Any, content: Content) -> list[BulkResult]:
    """Answers at once; each recipient's devices are queued in the background."""
    require_scope(principal, "push:write")
    wanted = _recipients(recipients)
    if content.data and "workflow_state" in content.data:
        raise ValidationFailed(details={"data.workflow_state": ["Live Activities start with POST /api/push/send, one person at a time"]})
    check_sizes(*_alert_payloads(new_id("notification"), content))
    by_key = await push_devices.active_members(principal.org_id, [key for _, key in wanted])
    now = utcnow()
    results, rows = [], []
    for email, key in wanted:
        member = by_key.get(key)
        if member is None:
            results.append(BulkResult(email, error="not_found", message=push_devices.NO_MEMBER))
            continue
        notification = _notification(principal, member["user_id"], member["email"], "alert", content, now)
        notification.fanout = "pending"
        rows.append(_notification_row(notification))
        results.append(BulkResult(member["email"], notification.id, int(member["devices"])))
    if rows:
        async with atomic() as tx:
            sql, _ = insert_sql("push_notifications", rows[0])
            await tx.execute_many(placeholders(tx.capabilities.dialect, sql), [list(r.values()) for r in rows])
        Fanout.nudge()
    return results


def _notification_row(n: Notification) -> dict[str, Any]:
    return {
        column: field.to_db_value(getattr(n, name), n)
        for name, field in Notification._meta.fields_map.items()
        if (column := field.source_field or name) in Notification._meta.db_fields
    }


_PENDING_SQL = (
    "SELECT id, organization_id, user_id, title, body, priority, sound, badge, data FROM push_notifications "
    "WHERE fanout = 'pending' ORDER BY created_at LIMIT ?"
)


async def fan_out(limit: int = FANOUT_CHUNK) -> int:
    """Queue the devices of up to ``limit`` pending bulk notifications, in one transaction.
    Hand-written reads: a fan-out of thousands builds no models."""
    pending = await fetch_dicts(_PENDING_SQL, [limit])
    if not pending:
        return 0
    now = utcnow()
    async with atomic() as conn:
        marks = ", ".join("?" for _ in pending)
        claimed = await conn.execute_query_dict(
            placeholders(
                conn.capabilities.dialect,
                f"UPDATE push_notifications SET fanout = 'queued' WHERE id IN ({marks}) "
                f"AND {unindexed(conn.capabilities.dialect, 'fanout')} = 'pending' RETURNING id",
            ),
            [n["id"] for n in pending],
        )
        mine = {row["id"] for row in claimed}  # another process may have taken some
        notifications = [n for n in pending if n["id"] in mine]
        devices = await devices_of({(n["organization_id"], n["user_id"]) for n in notifications})
        items: list[dict[str, Any]] = []
        for n in notifications:
            data = json.loads(n["data"]) if isinstance(n["data"], str) else n["data"]
            content = Content(n["title"], n["body"], n["priority"], n["sound"], n["badge"], data)
            apns, web = _alert_payloads(n["id"], content)
            bodies = Bodies(compact(apns), compact(web), apns_headers(content.priority), web_headers(content.priority))
            sent = Sent(n["id"], n["organization_id"], "alert")
            items += device_rows(sent, devices.get((n["organization_id"], n["user_id"]), []), bodies, now)
        await write(items)
    return len(notifications)


class Fanout(Recurring):
    """Runs ``fan_out`` at start, after each bulk send (``Fanout.nudge()``), and idly."""

    def __init__(self) -> None:
        super().__init__("push-fanout", fan_out)


# ---------------------------------------------------------------- read


@dataclass(frozen=True)
class DeviceDelivery:
    delivery_id: str
    channel: str
    status: str  # queued | sent | failed | token_removed | cancelled
    attempts: int
    reason: str | None
    status_code: int | None
    updated_at: datetime
    device_id: str | None = None
    live_activity_token_id: str | None = None


_STATUS = {"pending": "queued", "delivering": "queued", "succeeded": "sent", "failed": "failed", "cancelled": "cancelled"}
STATUSES = ("queued", "sent", "failed", "token_removed", "cancelled")
_DELIVERIES_SQL = (
    "SELECT o.id, o.channel, o.status, o.secret_ref, o.attempts, o.last_error, o.last_status_code, o.updated_at, "
    "EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = o.id AND a.outcome = 'gone') AS gone "
    "FROM outbox o WHERE o.group_id = ? ORDER BY o.created_at, o.id"
)
_UPDATED_AT = OutboxItem._meta.fields_map["updated_at"]


async def _still_there(refs: list[str]) -> set[str]:
    """Which ``device:<id>`` / ``latoken:<id>`` refs still have their row."""
    out: set[str] = set()
    for kind, table in (("device", "push_devices"), ("latoken", "live_activity_tokens")):
        ids = [ref.partition(":")[2] for ref in refs if ref.startswith(kind + ":")]
        if ids:
            rows = await fetch_dicts(f"SELECT id FROM {table} WHERE id IN ({', '.join('?' for _ in ids)})", ids)
            out |= {f"{kind}:{row['id']}" for row in rows}
    return out


async def _deliveries(notification_id: str) -> list[DeviceDelivery]:
    out = []
    rows = await fetch_dicts(_DELIVERIES_SQL, [notification_id])
    kept = await _still_there([r["secret_ref"] for r in rows if r["gone"] and r["secret_ref"]])
    for r in rows:
        kind, _, ref = (r["secret_ref"] or "").partition(":")
        status = _STATUS.get(r["status"], r["status"])
        if status == "failed" and r["gone"]:
            # Reported dead: removed, unless a newer registration kept it (then: failed).
            status = "failed" if r["secret_ref"] in kept else "token_removed"
        out.append(
            DeviceDelivery(
                delivery_id=r["id"],
                channel=r["channel"],
                status=status,
                attempts=int(r["attempts"]),
                reason=r["last_error"] if status != "sent" else None,
                status_code=r["last_status_code"],
                updated_at=_UPDATED_AT.to_python_value(r["updated_at"]),
                device_id=ref if kind == "device" else None,
                live_activity_token_id=ref if kind == "latoken" else None,
            )
        )
    return out


def summary(deliveries: list[DeviceDelivery]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for d in deliveries:
        counts[d.status] += 1
    return counts


async def get_notification(principal: Principal, notification_id: str) -> tuple[Notification, list[DeviceDelivery]]:
    require_scope(principal, "push:write")
    notification = await Notification.get_or_none(id=notification_id, organization_id=principal.org_id)
    if notification is None:
        raise NotFound("Notification not found.")
    return notification, await _deliveries(notification.id)


# ---------------------------------------------------------------- approvals


def _options(action: Mapping[str, Any]) -> list[dict[str, Any]]:
    if action["type"] == "boolean":
        return [
            {"id": "approve", "title": action.get("approve_label") or "Approve", "answer": {"approved": True}},
            {
                "id": "reject",
                "title": action.get("reject_label") or "Reject",
                "answer": {"approved": False},
                "requires_comment": bool(action.get("require_comment_on_reject")),
            },
        ]
    return [{"id": o["value"], "title": o["label"], "answer": {"selection": o["value"]}} for o in action["options"]]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def notify_interactive(target: Target, message: Message, interaction: Interaction, elements: list[dict[str, Any]]) -> None:
    """Push an approval (boolean) or a choice (buttons) to the conversation's owner, with a
    one-time token that answers this message and nothing else. Inside the caller's
    transaction; nothing when the owner has no devices. The push lives no longer than its
    token: a phone that comes online after that gets nothing it could not use."""
    action = next((e for e in elements if e.get("type") in ("boolean", "buttons")), None)
    if action is None:
        return
    organization_id, owner_id = target.organization_id, target.owner_id
    devices = (await devices_of({(organization_id, owner_id)})).get((organization_id, owner_id), [])
    if not devices:
        return
    now = utcnow()
    expires_at = now + timedelta(seconds=settings().action_token_ttl_seconds)
    if interaction.expires_at is not None:
        expires_at = min(expires_at, interaction.expires_at)
    ttl = max(1, int((expires_at - now).total_seconds()))
    header = next((e.get("text") for e in elements if e.get("type") == "header" and e.get("text")), None)
    title = _clip(str(header or ("Approval requested" if action["type"] == "boolean" else "Choose an option")), 120)
    notification = Notification(
        id=new_id("notification"), organization_id=organization_id, user_id=owner_id, email=target.owner_email,
        kind="approval", title=title, body=_clip(message.content, 500), priority="high", message_id=message.id,
        created_at=now,
    )
    category = APPROVAL_CATEGORY if action["type"] == "boolean" else CHOICE_CATEGORY

    def payloads(token: str, body: str, options: list[dict[str, Any]] | None) -> tuple[dict[str, Any], dict[str, Any]]:
        reply = {
            "message_id": message.id,
            "conversation_id": target.conversation_id,
            "token": token,
            "respond_url": f"/api/v1/messages/{message.id}/respond",
            "expires_at": iso(expires_at),
            "options": options or [],
        }
        actions = [{"action": o["id"], "title": o["title"]} for o in options or []]
        return (
            apns_alert(notification.id, title=title, body=body, priority="high", category=category, extra={"action": reply}),
            web_alert(notification.id, title=title, body=body, priority="high", actions=actions, extra={"action": reply}),
        )

    # Sized with a stand-in of the token's length; a message too long for a push loses its
    # text, then its options (the app still opens it), rather than the push.
    stand_in = "act_" + "x" * action_tokens.TOKEN_LENGTH
    options = _options(action)
    for body, shown in ((notification.body, options), (_clip(message.content, 100), options), (_clip(message.content, 100), None)):
        try:
            check_sizes(*payloads(stand_in, body, shown))
            break
        except ValidationFailed:
            continue
    else:
        log.warning("push: the approval push for %s does not fit in a push; not sent", message.id)
        return
    notification.body = body
    token = await action_tokens.issue(organization_id=organization_id, user_id=owner_id, message_id=message.id, expires_at=expires_at)
    apns, web = payloads(token, body, shown)
    await notification.save(force_create=True)
    bodies = Bodies(compact(apns), compact(web), apns_headers("high", ttl=ttl), web_headers("high", ttl=ttl), sealed=True)
    await write(device_rows(_sent(notification), devices, bodies, now))
