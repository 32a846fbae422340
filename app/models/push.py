"""Push: people's devices, the notifications sent to them, Live Activity tokens and the
one-time tokens that answer an approval from a notification.

Each device's delivery of a notification is an outbox item (channel ``apns`` or ``webpush``,
``group_id`` = the notification): the per-device record is the outbox's, with its attempts.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

__all__ = ["Device", "Notification", "LiveActivityToken", "ActionToken", "PLATFORMS", "ENVIRONMENTS"]

PLATFORMS = ("ios", "web")
ENVIRONMENTS = ("production", "sandbox")


class Device(Model):
    """A phone (an APNs device token) or a browser (a Web Push subscription). The same token
    or endpoint registered again is the same row: the newest registration owns it."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization_id = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=32)
    platform = fields.CharField(max_length=8)  # ios | web
    token = fields.TextField()  # the hex APNs token, or the subscription's endpoint URL
    token_key = fields.CharField(max_length=64, unique=True)  # sha256 of platform + token
    p256dh = fields.CharField(max_length=255, null=True)  # web: the subscription's public key
    auth = fields.CharField(max_length=255, null=True)  # web: its auth secret (encrypted)
    bundle_id = fields.CharField(max_length=255, null=True)
    environment = fields.CharField(max_length=16, default="production")
    name = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()  # last (re-)registration: a dead-token report older than it loses

    class Meta:
        table = "push_devices"
        indexes = (("organization_id", "user_id"),)


class Notification(Model):
    """One push to one person (a bulk send makes one per recipient)."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization_id = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=32)
    email = fields.CharField(max_length=320)
    kind = fields.CharField(max_length=16)  # alert | liveactivity | approval
    title = fields.TextField()
    body = fields.TextField()
    priority = fields.CharField(max_length=16, default="normal")
    sound = fields.CharField(max_length=255, null=True)
    badge = fields.IntField(null=True)
    data: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    # queued: its per-device deliveries are written; pending: a bulk send's, still to fan out.
    fanout = fields.CharField(max_length=16, default="queued")
    message_id = fields.CharField(max_length=32, null=True)  # an approval's interactive message
    # Live Activities: the last content state and aps.timestamp sent, and when it ended.
    activity_state: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    activity_timestamp = fields.BigIntField(default=0)
    ended_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "push_notifications"
        indexes = (("organization_id", "created_at"), ("fanout", "created_at"))


class LiveActivityToken(Model):
    """An APNs token for Live Activities: a device's push-to-start token (``notification_id``
    null) or the update token of one running activity. ``slot`` keeps the newest per device."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization_id = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=32)
    notification_id = fields.CharField(max_length=32, null=True, db_index=True)
    device_id = fields.CharField(max_length=32, null=True, db_index=True)
    slot = fields.CharField(max_length=128, unique=True)
    token = fields.CharField(max_length=255)
    bundle_id = fields.CharField(max_length=255, null=True)
    environment = fields.CharField(max_length=16, default="production")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "live_activity_tokens"
        indexes = (("organization_id", "user_id"),)


class ActionToken(Model):
    """Answers one interactive message, once, from a notification (stored as a hash)."""

    id = fields.CharField(max_length=32, primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    organization_id = fields.CharField(max_length=32)
    user_id = fields.CharField(max_length=32)
    message_id = fields.CharField(max_length=32, db_index=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "push_action_tokens"
