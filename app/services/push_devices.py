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
from ..models.core import Membership
from ..models.push import ENVIRONMENTS, Device
from .push_queue import forget_dead
from .validation import check_outbound_url, normalize_email

__all__ = [
    "DeviceInput",
    "register_device",
    "list_own",
    "delete_device",
    "list_for_email",
    "member_by_email",
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
        token = body.token
        if not isinstance(token, str) or not _HEX.match(token) or not 64 <= len(token) <= 200 or len(token) % 2:
            problems["token"] = ["must be the APNs device token in hex (64 to 200 hex digits)"]
        environment = body.environment if body.environment is not None else "production"
        if environment not in ENVIRONMENTS:
            problems["environment"] = ['must be "production" or "sandbox"']
        bundle_id = body.bundle_id
        if bundle_id is not None and (not isinstance(bundle_id, str) or not _BUNDLE.match(bundle_id)):
            problems["bundle_id"] = ["must be an app bundle id such as com.example.app"]
        if problems:
            raise ValidationFailed(details=problems)
        return _Checked("ios", str(token).lower(), None, None, bundle_id, str(environment), name)
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


def _person(principal: Principal) -> str:
    if principal.kind != "session" or principal.user is None:
        raise Forbidden("Devices are registered by a person, with a session token.")
    return str(principal.user.id)


async def register_device(principal: Principal, body: DeviceInput, *, settings: Settings) -> tuple[Device, bool]:
    """(the device, whether it is new). Registering a known token or endpoint again moves it to
    this person and refreshes it."""
    user_id = _person(principal)
    checked = await _check(body, allow_private=settings.allow_private_webhooks)
    key = _token_key(checked.platform, checked.token)
    now = utcnow()
    async with atomic():
        device = await Device.filter(token_key=key).select_for_update().first()
        created = device is None
        if device is None:
            device = Device(id=new_id("device"), token_key=key, created_at=now)
        device.organization_id, device.user_id = principal.org_id, user_id
        device.platform, device.token, device.p256dh = checked.platform, checked.token, checked.p256dh
        device.auth = crypto.encrypt(checked.auth, sealed_owner(device.id)) if checked.auth else None
        device.bundle_id, device.environment, device.updated_at = checked.bundle_id, checked.environment, now
        if checked.name is not None or created:
            device.name = checked.name
        await device.save(force_create=created)
    return device, created


async def list_own(principal: Principal) -> list[Device]:
    user_id = _person(principal)
    return await Device.filter(organization_id=principal.org_id, user_id=user_id).order_by("created_at")


async def delete_device(principal: Principal, device_id: str) -> None:
    """A person removes their own device; an admin any device of the organization."""
    query = Device.filter(id=device_id, organization_id=principal.org_id)
    if not principal.is_admin:
        query = query.filter(user_id=_person(principal))
    if not await query.delete():
        raise NotFound("Device not found.")


async def member_by_email(principal: Principal, email: str) -> tuple[str, str]:
    """(user id, email as the account spells it) of an active member, else 404."""
    _, key = normalize_email(email)
    rows = await Membership.filter(
        organization_id=principal.org_id, status="active", user__email_key=key
    ).values_list("user_id", "user__email")
    if not rows:
        raise NotFound("No member of this organization has this email address.")
    user_id, spelled = rows[0]
    return str(user_id), str(spelled)


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
        out[row["id"]] = outbox.Recipient(target=target, secrets=secrets)
    return out


async def _forget(item: dict[str, Any], result: DeliveryResult) -> None:
    await forget_dead("push_devices", "device", item)


outbox.register_resolver("device", _resolve)
outbox.on_gone("apns", _forget)
outbox.on_gone("webpush", _forget)
