"""Organizations, people, memberships, sessions, API keys and event subscriptions."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

__all__ = ["Organization", "User", "Membership", "PasswordReset", "Session", "ApiKey", "EventSubscription", "ROLES"]

ROLES = ("owner", "admin", "member")


class Organization(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    name = fields.CharField(max_length=200)
    plan = fields.CharField(max_length=32, default="self-hosted")
    timezone = fields.CharField(max_length=64, default="UTC")
    # Signs interactive-message callbacks (encrypted at rest, bound to the organization);
    # made on first use. After a rotation the previous one keeps signing until it expires.
    callback_secret = fields.CharField(max_length=255, null=True)
    previous_callback_secret = fields.CharField(max_length=255, null=True)
    previous_callback_secret_expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "organizations"


class User(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    email = fields.CharField(max_length=320)
    # Lower-cased email: uniqueness is case-insensitive on every backend.
    email_key = fields.CharField(max_length=320, unique=True)
    name = fields.CharField(max_length=200, default="")
    password_hash = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class Membership(Model):
    id = fields.IntField(primary_key=True)
    # The id a pending invitation is known by (``mbr_...``): the invitee's user id is shown
    # only once they accept, so an invite never tells whether the address has an account.
    public_id = fields.CharField(max_length=32, null=True, unique=True)
    # The address as the inviter wrote it: shown and mailed while the invitation is pending,
    # so the answer never shows how an existing account spells it.
    invited_email = fields.CharField(max_length=320, null=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="memberships", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="memberships", on_delete=fields.CASCADE
    )
    role = fields.CharField(max_length=16, default="member")
    status = fields.CharField(max_length=16, default="active")  # pending | active
    invite_token_hash = fields.CharField(max_length=64, null=True, unique=True)
    invite_expires_at = fields.DatetimeField(null=True)
    invited_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="invitations", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "memberships"
        unique_together = (("organization", "user"),)


class PasswordReset(Model):
    """A one-time token emailed to prove the address is the reader's (stored as a hash)."""

    id = fields.CharField(max_length=32, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="password_resets", on_delete=fields.CASCADE
    )
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "password_resets"


class Session(Model):
    """A person's login in one organization. Removing the membership ends its sessions."""

    id = fields.CharField(max_length=32, primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    membership: fields.ForeignKeyRelation[Membership] = fields.ForeignKeyField(
        "core.Membership", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sessions"


class ApiKey(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="api_keys", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    key_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)  # first characters, so people can tell keys apart
    scopes: fields.Field[list[str]] = fields.JSONField(default=list)
    enabled = fields.BooleanField(default=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="api_keys", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "api_keys"


class EventSubscription(Model):
    """An organization's webhook for events (``whk_...``): which events go to which URL,
    signed with its own secret (encrypted, bound to the subscription; after a rotation the
    previous one keeps signing until it expires). ``failing_since`` is the first failed
    attempt since the last success; past a day of failures it is disabled and says why."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="event_subscriptions", on_delete=fields.CASCADE
    )
    url = fields.CharField(max_length=2048)
    events: fields.Field[list[str]] = fields.JSONField(default=list)
    description = fields.CharField(max_length=500, default="")
    signing_secret = fields.CharField(max_length=255)
    previous_signing_secret = fields.CharField(max_length=255, null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    enabled = fields.BooleanField(default=True)
    disabled_reason = fields.CharField(max_length=255, null=True)
    disabled_at = fields.DatetimeField(null=True)
    failing_since = fields.DatetimeField(null=True)
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="event_subscriptions", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "event_subscriptions"
        indexes = (("organization_id", "created_at"),)
