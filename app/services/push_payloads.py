"""What a push says, per channel: the APNs JSON (``aps`` and our keys beside it) and the
JSON a web client's service worker reads. Pure functions; one table of priorities.

Priorities (the contract's names) map to APNs ``apns-priority`` and ``interruption-level``
and to Web Push ``Urgency``:

    critical  10  critical        high
    high      10  time-sensitive  high
    medium    10  active          normal
    normal    10  active          normal
    low        5  passive         low
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from channels.apns import MAX_PAYLOAD_BYTES, payload_size

from ..kernel.errors import ValidationFailed

__all__ = [
    "Priority",
    "PRIORITIES",
    "WEB_MAX_PAYLOAD_BYTES",
    "STALE_AFTER_SECONDS",
    "APPROVAL_CATEGORY",
    "CHOICE_CATEGORY",
    "apns_alert",
    "web_alert",
    "apns_live",
    "check_sizes",
    "check_priority",
    "compact",
]


@dataclass(frozen=True)
class Priority:
    apns: int
    level: str  # aps.interruption-level
    urgency: str  # Web Push Urgency


PRIORITIES: dict[str, Priority] = {
    "critical": Priority(10, "critical", "high"),
    "high": Priority(10, "time-sensitive", "high"),
    "medium": Priority(10, "active", "normal"),
    "normal": Priority(10, "active", "normal"),
    "low": Priority(5, "passive", "low"),
}
# RFC 8291: a push message's record is 4,096 bytes; 103 of them are the encryption's.
WEB_MAX_PAYLOAD_BYTES = 3993
STALE_AFTER_SECONDS = 120  # a Live Activity not updated for this long shows as stale
APPROVAL_CATEGORY = "SWITCHBOARD_APPROVAL"
CHOICE_CATEGORY = "SWITCHBOARD_CHOICE"


def check_priority(value: Any, field: str, problems: dict[str, list[str]]) -> str:
    """A contract priority name (default ``normal``); any other value is a problem of ``field``."""
    if value is None:
        return "normal"
    if not isinstance(value, str) or value not in PRIORITIES:
        problems[field] = [f"must be one of {', '.join(PRIORITIES)}"]
        return "normal"
    return value


def compact(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def apns_alert(
    notification_id: str,
    *,
    title: str,
    body: str,
    priority: str,
    sound: str | None = None,
    badge: int | None = None,
    data: Mapping[str, Any] | None = None,
    category: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    level = PRIORITIES[priority].level
    aps: dict[str, Any] = {"alert": {"title": title, "body": body}, "interruption-level": level}
    if level == "critical":
        # A critical alert plays its sound even when the phone is muted (the app holds the
        # critical-alert entitlement); without one it is an ordinary alert.
        aps["sound"] = {"critical": 1, "name": sound or "default", "volume": 1.0}
    elif sound:
        aps["sound"] = sound
    if badge is not None:
        aps["badge"] = badge
    if category:
        aps["category"] = category
        aps["mutable-content"] = 1
    out: dict[str, Any] = {"aps": aps, "notification_id": notification_id}
    if data:
        out["data"] = dict(data)
    if extra:
        out.update(extra)
    return out


def web_alert(
    notification_id: str,
    *,
    title: str,
    body: str,
    priority: str,
    sound: str | None = None,
    badge: int | None = None,
    data: Mapping[str, Any] | None = None,
    actions: list[dict[str, str]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Options for the service worker's ``showNotification(title, options)``, plus our keys."""
    out: dict[str, Any] = {
        "notification_id": notification_id,
        "title": title,
        "body": body,
        "priority": priority,
        "tag": notification_id,
        "requireInteraction": priority == "critical" or bool(actions),
    }
    if sound:
        out["sound"] = sound
    if badge is not None:
        out["badge_count"] = badge
    if data:
        out["data"] = dict(data)
    if actions:
        out["actions"] = actions
    if extra:
        out.update(extra)
    return out


def apns_live(
    *,
    event: str,
    timestamp: int,
    content_state: Mapping[str, Any],
    now: int,
    attributes_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    alert: Mapping[str, str] | None = None,
    dismissal_date: int | None = None,
) -> dict[str, Any]:
    aps: dict[str, Any] = {
        "timestamp": timestamp,
        "event": event,
        "content-state": dict(content_state),
        "stale-date": now + STALE_AFTER_SECONDS,
    }
    if event == "start":
        aps["attributes-type"] = attributes_type
        aps["attributes"] = dict(attributes or {})
    if alert:
        aps["alert"] = dict(alert)
    if event == "end" and dismissal_date is not None:
        aps["dismissal-date"] = dismissal_date
    return {"aps": aps}


def check_sizes(apns: Mapping[str, Any] | None, web: Mapping[str, Any] | None) -> None:
    """422 before anything is queued when a channel would refuse the payload."""
    problems: dict[str, list[str]] = {}
    if apns is not None and (size := payload_size(dict(apns))) > MAX_PAYLOAD_BYTES:
        problems["payload"] = [f"is {size} bytes as an APNs payload; APNs accepts at most {MAX_PAYLOAD_BYTES}"]
    if web is not None and (size := len(compact(web).encode())) > WEB_MAX_PAYLOAD_BYTES:
        problems.setdefault("payload", []).append(
            f"is {size} bytes as a Web Push payload; at most {WEB_MAX_PAYLOAD_BYTES} fit in one encrypted message"
        )
    if problems:
        raise ValidationFailed("The notification is too large to push.", details=problems)
