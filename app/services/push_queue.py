"""Queuing pushes: one outbox item per device or Live Activity token, with the settings
every push shares (APNs expiry, Web Push TTL and urgency). Used by ``push`` and
``live_activities``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Sequence

from tortoise import connections

import channels

from .. import outbox
from ..kernel import vapid
from ..kernel.config import Settings
from ..kernel.db import db_value, fetch_dicts, placeholders
from ..kernel.timefmt import utcnow
from ..models.push import Device, LiveActivityToken
from .push_payloads import PRIORITIES

__all__ = [
    "configure", "settings", "Bodies", "Sent", "DeviceRef", "devices_of", "apns_headers", "web_headers", "device_rows", "token_rows", "write",
    "forget_dead", "APNS_NOT_CONFIGURED",
]

APNS_NOT_CONFIGURED = "APNs is not configured on this server (SWITCHBOARD_APNS_KEY_FILE, _KEY_ID, _TEAM_ID)"

_settings = Settings()


def configure(value: Settings) -> None:
    """Take the push settings; ``ValueError`` says what is wrong with them (an unreadable
    APNs key, a malformed APNs URL or VAPID key)."""
    global _settings
    if value.apns_configured:
        channels.apns_settings(value)
    vapid.load(value)
    _settings = value


def settings() -> Settings:
    return _settings


def apns_headers(priority: str, push_type: str = "alert", *, ttl: int | None = None) -> dict[str, str]:
    """``ttl``: seconds APNs keeps it for an offline device (at most ``push_ttl_seconds``)."""
    expires = int(utcnow().timestamp()) + min(ttl or _settings.push_ttl_seconds, _settings.push_ttl_seconds)
    return {"apns-push-type": push_type, "apns-priority": str(PRIORITIES[priority].apns), "apns-expiration": str(expires)}


def web_headers(priority: str, *, ttl: int | None = None) -> dict[str, str]:
    ttl = min(ttl or _settings.push_ttl_seconds, _settings.push_ttl_seconds)
    return {"TTL": str(ttl), "Urgency": PRIORITIES[priority].urgency}


@dataclass
class Bodies:
    """One notification's bodies and headers per channel, serialised once for all devices."""

    apns: str | None
    web: str | None
    apns_headers: dict[str, str] = field(default_factory=dict)
    web_headers: dict[str, str] = field(default_factory=dict)
    sealed: bool = False  # the body carries a secret (an action token)


class Sent(NamedTuple):
    """What a queued item records of its notification."""

    id: str
    organization_id: str
    kind: str
    message_id: str | None = None


class DeviceRef(NamedTuple):
    id: str
    platform: str


async def devices_of(people: set[tuple[str, str]]) -> dict[tuple[str, str], list[DeviceRef]]:
    """(organization id, user id) -> that person's devices there, oldest first: one read for
    a whole fan-out, without building models."""
    users = sorted({user for _, user in people})
    if not users:
        return {}
    rows = await fetch_dicts(
        f"SELECT id, organization_id, user_id, platform FROM push_devices WHERE user_id IN ({', '.join('?' for _ in users)}) "
        "ORDER BY created_at, id",
        users,
    )
    out: dict[tuple[str, str], list[DeviceRef]] = {}
    for r in rows:
        if (r["organization_id"], r["user_id"]) in people:
            out.setdefault((r["organization_id"], r["user_id"]), []).append(DeviceRef(r["id"], r["platform"]))
    return out


def _row(notification: Sent, channel: str, ref: str, body: str, headers: dict[str, str], sealed: bool,
         now: datetime) -> dict[str, Any]:
    return outbox.row(
        organization_id=notification.organization_id,
        channel=channel,
        kind="push",
        event=f"push.{notification.kind}",
        target=ref.partition(":")[2],
        body=body,
        headers=headers,
        secret_ref=ref,  # the device (or token) is resolved at attempt time
        group_id=notification.id,
        message_id=notification.message_id,
        sealed=sealed,
        failed=APNS_NOT_CONFIGURED if channel == "apns" and not _settings.apns_configured else None,
        now=now,
    )


def device_rows(notification: Sent, devices: Sequence[DeviceRef], bodies: Bodies, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for device in devices:
        ios = device.platform == "ios"
        body = bodies.apns if ios else bodies.web
        if body is not None:
            headers = bodies.apns_headers if ios else bodies.web_headers
            rows.append(_row(notification, "apns" if ios else "webpush", f"device:{device.id}", body, headers, bodies.sealed, now))
    return rows


def token_rows(notification: Sent, tokens: list[LiveActivityToken], body: str, headers: dict[str, str],
               now: datetime) -> list[dict[str, Any]]:
    return [_row(notification, "apns", f"latoken:{t.id}", body, headers, False, now) for t in tokens]


async def write(items: list[dict[str, Any]]) -> None:
    """Insert in the current transaction; the worker is woken after the commit."""
    await outbox.enqueue_rows(items)


async def forget_dead(table: str, prefix: str, item: dict[str, Any]) -> None:
    """A push service reported the target of ``item`` (``<prefix>:<id>``) dead: delete that
    row of ``table``, unless its token changed or it was registered again after the push was
    queued (the newer registration wins)."""
    kind, _, row_id = str(item.get("secret_ref") or "").partition(":")
    if kind != prefix:
        return
    try:
        sent = json.loads(item.get("sent_to") or "")  # the token the push service refused
        token = sent.get("token") or sent.get("endpoint")
    except (ValueError, TypeError, AttributeError):
        return
    queued_at = item["window_start"]
    if isinstance(queued_at, str):
        queued_at = datetime.fromisoformat(queued_at)
    conn = connections.get("default")
    await conn.execute_query(
        placeholders(conn.capabilities.dialect, f"DELETE FROM {table} WHERE id = ? AND token = ? AND updated_at <= ?"),
        [row_id, token, db_value(Device, "updated_at", queued_at)],
    )
