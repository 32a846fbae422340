"""An organization's callback secret: it signs every interactive-message callback (the
``callback`` channel) exactly as an agent's secret signs its webhooks. Made on first use,
stored encrypted, readable by admins, rotated with the same 24-hour overlap."""

from __future__ import annotations

from datetime import datetime

from .. import outbox
from ..kernel import crypto
from ..kernel.auth import Principal, require_admin
from ..kernel.errors import Conflict
from ..models.core import Organization
from . import signing

__all__ = ["secret_ref", "ensure_secret", "get_secret", "rotate_secret"]


def _owner(org_id: str) -> str:
    return f"org:{org_id}:callbacks"


def secret_ref(org_id: str) -> str:
    """The outbox's name for who signs an organization's callbacks."""
    return f"org:{org_id}"


# Organizations seen with a secret by this process: a secret is never removed, so once is enough.
_has_secret: set[str] = set()


async def ensure_secret(org_id: str) -> None:
    """Make the organization's secret if it has none (conditional: two at once make one)."""
    if org_id in _has_secret:
        return
    if await Organization.filter(id=org_id, callback_secret__isnull=True).exists():
        stored = signing.seal(_owner(org_id), signing.new())
        await Organization.filter(id=org_id, callback_secret__isnull=True).update(callback_secret=stored)
    _has_secret.add(org_id)


async def get_secret(principal: Principal) -> tuple[str, datetime | None]:
    """The current secret in plain text, and until when the previous one still signs."""
    require_admin(principal)
    await ensure_secret(principal.org_id)
    org = await Organization.get(id=principal.org_id)
    assert org.callback_secret is not None
    try:
        secret = signing.unseal(_owner(org.id), org.callback_secret)
    except crypto.CryptoError:
        raise Conflict(
            "The callback secret does not decrypt with this server's key (SWITCHBOARD_SECRET_KEY "
            "changed?). Rotate it to get a new one.",
            code="secret_unreadable",
        ) from None
    return secret, org.previous_callback_secret_expires_at


async def rotate_secret(principal: Principal) -> tuple[str, datetime | None]:
    require_admin(principal)
    await ensure_secret(principal.org_id)
    org = await Organization.get(id=principal.org_id)
    rotation = signing.rotate(_owner(org.id), org.callback_secret)
    # Conditional on the secret read: of two rotations at once, one wins and the other is told.
    if not await Organization.filter(id=org.id, callback_secret=org.callback_secret).update(
        callback_secret=rotation.stored,
        previous_callback_secret=rotation.previous,
        previous_callback_secret_expires_at=rotation.previous_expires_at,
    ):
        raise Conflict("The callback secret was rotated by another request just now.", code="rotation_conflict")
    return rotation.secret, rotation.previous_expires_at


async def _resolve(org_ids: list[str]) -> dict[str, outbox.Recipient]:
    out: dict[str, outbox.Recipient] = {}
    for org in await Organization.filter(id__in=org_ids):
        if not org.callback_secret:
            out[org.id] = outbox.Recipient(error="the organization has no callback secret yet")
            continue
        try:
            out[org.id] = outbox.Recipient(
                secrets=signing.current(
                    _owner(org.id), org.callback_secret, org.previous_callback_secret,
                    org.previous_callback_secret_expires_at,
                )
            )
        except crypto.CryptoError:
            out[org.id] = outbox.Recipient(error="callback secret cannot be decrypted (check SWITCHBOARD_SECRET_KEY)")
    return out


outbox.register_resolver("org", _resolve)
