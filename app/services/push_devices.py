"""People's devices: phones (APNs tokens) and browsers (Web Push subscriptions).

The same token or endpoint registered again is the same device (one row; the newest
registration owns it and bumps ``updated_at``). At attempt time the outbox asks the
``device`` resolver where an item goes, so a deleted device's queued pushes are cancelled.
A push service reporting the token dead removes the device, unless it was registered again
after that push was queued: the newer registration wins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from channels.base import DeliveryResult

from .. import outbox
from ..kernel import crypto, vapid
from ..kernel.auth import Principal, require_scope
from ..kernel.config import Settings
from ..kernel.db import fetch_dicts
from ..kernel.errors import Forbidden, NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.chat import OutboxItem
from ..models.push import ENVIRONMENTS, Device, LiveActivityToken
from .push_queue import forget_dead
from .validation import check_outbound_url, normalize_email

__all__ = [
    "DeviceInput",
    "register_device",
    "list_own",
    "delete_device",
    "list_for_email",
    "member_by_email",
    "active_members",
    "NO_MEMBER",
    "check_apns_token",
    "check_bundle_id",
    "check_environment",
    "person_id",
    "forget_device",
    "vapid_public_key",
    "token_hint",
    "sealed_owner",
]

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_BUNDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,254}$")


def sealed_owner(device_id: str) -> str:
    """What a web subscription's auth secret is encrypted to: only this device opens it."""
    return f"device:{device_id}"


def _b64url(value: Any) -> bytes | None:
    if not isinstance(value, str) or not value or len(value) > 255:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def check_apns_token(value: Any, field: str, problems: dict[str, list[str]]) -> str | None:
    """An APNs token (device, push-to-start or activity update token): hex, lower-cased."""
    if not isinstance(value, str) or not _HEX.match(value) or not 64 <= len(value) <= 200 or len(value) % 2:
        problems[field] = ["must be an APNs token in hex (64 to 200 hex digits)"]
        return None
    return value.lower()


def check_bundle_id(value: Any, field: str, problems: dict[str, list[str]]) -> str | None:
    if value is not None and (not isinstance(value, str) or not _BUNDLE.match(value)):
        problems[field] = ["must be an app bundle id such as com.example.app"]
        return None
    return value


def check_environment(value: Any, field: str, problems: dict[str, list[str]]) -> str:
    if value is not None and value not in ENVIRONMENTS:
        problems[field] = ['must be "production" or "sandbox"']
    return str(value or "production")


def person_id(principal: Principal, what: str = "Devices are registered") -> str:
    """The caller's user id: devices and their tokens are a person's, with a session token."""
    if principal.kind != "session" or principal.user is None:
        raise Forbidden(f"{what} by a person, with a session token.")
    return str(principal.user.id)


@dataclass(frozen=True)
class DeviceInput:
    platform: Any
    token: Any = None
    bundle_id: Any = None
    environment: Any = None
    subscription: Any = None
    name: Any = None


@dataclass(frozen=True)
class _Checked:
    platform: str
    token: str
    p256dh: str | None
    auth: str | None
    bundle_id: str | None
    environment: str
    name: str | None


async def _check(body: DeviceInput, *, allow_private: bool) -> _Checked:
    problems: dict[str, list[str]] = {}
    name = body.name
    if name is not None and (not isinstance(name, str) or len(name.strip()) > 200):
        problems["name"] = ["must be a string of at most 200 characters"]
    name = name.strip() or None if isinstance(name, str) else None
    if body.platform == "ios":
        token = check_apns_token(body.token, "token", problems)
        environment = check_environment(body.environment, "environment", problems)
        bundle_id = check_bundle_id(body.bundle_id, "bundle_id", problems)
        if problems:
            raise ValidationFailed(details=problems)
        return _Checked("ios", str(token), None, None, bundle_id, environment, name)
    if body.platform == "web":
        sub = body.subscription
        if not isinstance(sub, dict):
            raise ValidationFailed(details={"subscription": ["must be an object {endpoint, keys: {p256dh, auth}}"], **problems})
        endpoint = sub.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.strip():
            problems["subscription.endpoint"] = ["is required"]
        elif not endpoint.strip().startswith("https://") and not allow_private:
            problems["subscription.endpoint"] = ["must be an https URL"]
        else:
            try:
                endpoint = await check_outbound_url("subscription.endpoint", endpoint, allow_private=allow_private)
            except ValidationFailed as exc:
                problems.update(exc.details)
        keys: dict[str, Any] = sub["keys"] if isinstance(sub.get("keys"), dict) else {}
        p256dh, auth = _b64url(keys.get("p256dh")), _b64url(keys.get("auth"))
        if p256dh is None or len(p256dh) != 65 or p256dh[0] != 4:
            problems["subscription.keys.p256dh"] = ["must be the base64url P-256 public key of the subscription"]
        if auth is None or len(auth) != 16:
            problems["subscription.keys.auth"] = ["must be the base64url 16-byte auth secret of the subscription"]
        if problems:
            raise ValidationFailed(details=problems)
        return _Checked("web", str(endpoint), keys["p256dh"].rstrip("="), keys["auth"].rstrip("="), None, "production", name)
    raise ValidationFailed(details={"platform": ['must be "ios" or "web"'], **problems})


def _token_key(platform: str, token: str) -> str:
    return hashlib.sha256(f"{platform}:{token}".encode()).hexdigest()


async def register_device(principal: Principal, body: DeviceInput, *, settings: Settings) -> tuple[Device, bool]:
    """(the device, whether it is new). Registering a known token or endpoint again moves it to
    this person and refreshes it."""
    user_id = person_id(principal)
    checked = await _check(body, allow_private=settings.allow_private_webhooks)
    key = _token_key(checked.platform, checked.token)
    for attempt in (1, 2):
        try:
            return await _save(principal.org_id, user_id, key, checked)
        except IntegrityError:
            if attempt == 2:  # two first registrations of one token raced: the other row won
                raise
    raise AssertionError("unreachable")


async def _save(organization_id: str, user_id: str, key: str, checked: _Checked) -> tuple[Device, bool]:
    now = utcnow()
    async with atomic():
        device = await Device.filter(token_key=key).select_for_update().first()
        created = device is None
        if device is None:
            device = Device(id=new_id("device"), token_key=key, created_at=now)
        elif (device.organization_id, device.user_id) != (organization_id, user_id):
            # The phone or browser changed hands: what was queued for the previous owner (an
            # approval's one-time token, say) and their Live Activities stay theirs.
            await forget_device(device.id, "cancelled: the device was registered by someone else")
        device.organization_id, device.user_id = organization_id, user_id
        device.platform, device.token, device.p256dh = checked.platform, checked.token, checked.p256dh
        device.auth = crypto.encrypt(checked.auth, sealed_owner(device.id)) if checked.auth else None
        device.bundle_id, device.environment, device.updated_at = checked.bundle_id, checked.environment, now
        if checked.name is not None or created:
            device.name = checked.name
        await device.save(force_create=created)
    return device, created


async def forget_device(device_id: str, reason: str) -> None:
    """Cancel the device's queued pushes and drop its Live Activity tokens (in the caller's
    transaction)."""
    queued = await OutboxItem.filter(secret_ref=f"device:{device_id}", status__in=("pending", "delivering")).values_list("id", flat=True)
    await outbox.cancel([str(i) for i in queued], reason)
    await LiveActivityToken.filter(device_id=device_id).delete()


async def list_own(principal: Principal) -> list[Device]:
    user_id = person_id(principal)
    return await Device.filter(organization_id=principal.org_id, user_id=user_id).order_by("created_at")


async def delete_device(principal: Principal, device_id: str) -> None:
    """A person removes their own device; an admin any device of the organization."""
    query = Device.filter(id=device_id, organization_id=principal.org_id)
    if not principal.is_admin:
        query = query.filter(user_id=person_id(principal))
    async with atomic():
        if not await query.delete():
            raise NotFound("Device not found.")
        await forget_device(device_id, "cancelled: the device was deleted")


async def active_members(organization_id: str, email_keys: list[str]) -> dict[str, dict[str, Any]]:
    """email key -> {user_id, email, devices (how many)} of the organization's active members."""
    if not email_keys:
        return {}
    rows = await fetch_dicts(
        "SELECT u.id AS user_id, u.email, u.email_key, (SELECT COUNT(*) FROM push_devices d "
        "WHERE d.organization_id = m.organization_id AND d.user_id = u.id) AS devices "
        "FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = ? AND m.status = 'active' "
        f"AND u.email_key IN ({', '.join('?' for _ in email_keys)})",
        [organization_id, *email_keys],
    )
    return {row["email_key"]: row for row in rows}


NO_MEMBER = "No member of this organization has this email address."


async def member_by_email(principal: Principal, email: str) -> tuple[str, str]:
    """(user id, email as the account spells it) of an active member, else 404."""
    _, key = normalize_email(email)
    member = (await active_members(principal.org_id, [key])).get(key)
    if member is None:
        raise NotFound(NO_MEMBER)
    return str(member["user_id"]), str(member["email"])


async def list_for_email(principal: Principal, email: str) -> tuple[str, list[Device]]:
    require_scope(principal, "push:write")
    user_id, spelled = await member_by_email(principal, email)
    devices = await Device.filter(organization_id=principal.org_id, user_id=user_id).order_by("created_at")
    return spelled, devices


def vapid_public_key(settings: Settings) -> str:
    return vapid.load(settings).public_key


def token_hint(device: Device) -> str:
    """Enough of a token or endpoint to tell devices apart, never the whole of it."""
    if device.platform == "web":
        return device.token.split("://", 1)[-1].split("/", 1)[0]
    return "…" + device.token[-8:]


# ---------------------------------------------------------------- outbox hooks


def address(device: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(target JSON, secrets) the channel sends to, from a device's row; the auth secret
    travels as a secret, so it never lands in the delivery log."""
    if device["platform"] == "web":
        auth = crypto.decrypt(device["auth"] or "", sealed_owner(device["id"]))
        return json.dumps({"endpoint": device["token"], "p256dh": device["p256dh"]}), (auth,)
    return json.dumps({"token": device["token"], "environment": device["environment"], "bundle_id": device["bundle_id"]}), ()


async def _resolve(ids: list[str]) -> dict[str, outbox.Recipient]:
    # Hand-written, on the hot path: every claimed push asks for its device.
    rows = await fetch_dicts(
        f"SELECT id, platform, token, p256dh, auth, bundle_id, environment FROM push_devices "
        f"WHERE id IN ({', '.join('?' for _ in ids)})",
        list(ids),
    )
    out: dict[str, outbox.Recipient] = {}
    for row in rows:
        try:
            target, secrets = address(row)
        except crypto.CryptoError:
            out[row["id"]] = outbox.Recipient(error="subscription secret cannot be decrypted (check SWITCHBOARD_SECRET_KEY)")
            continue
        out[row["id"]] = outbox.Recipient(target=target, secrets=secrets, record_target=False)
    return out


async def _forget(item: dict[str, Any], result: DeliveryResult) -> None:
    await forget_dead("push_devices", "device", item)


outbox.register_resolver("device", _resolve)
outbox.on_gone("apns", _forget)
outbox.on_gone("webpush", _forget)
