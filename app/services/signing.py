"""Signing secrets (``whsec_...``) of everything the gateway signs: an agent's webhooks, an
organization's interactive callbacks. Stored encrypted, bound to their owner; after a
rotation the previous secret keeps signing for ``OVERLAP`` so receivers can switch over."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..kernel import crypto
from ..kernel.ids import new_secret
from ..kernel.timefmt import utcnow

__all__ = ["OVERLAP", "Rotation", "new", "seal", "unseal", "current", "rotate"]

log = logging.getLogger("switchboard.signing")

OVERLAP = timedelta(hours=24)


def new() -> str:
    return new_secret("whsec", 40)


def seal(owner: str, secret: str) -> str:
    return crypto.encrypt(secret, owner)


def unseal(owner: str, stored: str) -> str:
    return crypto.decrypt(stored, owner)


def current(
    owner: str, stored: str, previous: str | None, previous_expires_at: datetime | None, now: datetime | None = None
) -> tuple[str, ...]:
    """The secrets that sign right now, newest first, decrypted (``CryptoError`` if the
    server's key does not open them)."""
    now = now or utcnow()
    secret = unseal(owner, stored)
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return (secret, unseal(owner, previous))
    return (secret,)


@dataclass(frozen=True)
class Rotation:
    secret: str  # the new one, in plain text: returned to the caller once
    stored: str
    previous: str | None
    previous_expires_at: datetime | None


def rotate(owner: str, stored: str | None) -> Rotation:
    """A new secret; the old one (if it still opens) keeps signing for ``OVERLAP``."""
    secret = new()
    previous: str | None = None
    expires: datetime | None = None
    if stored:
        try:
            previous, expires = seal(owner, unseal(owner, stored)), utcnow() + OVERLAP
        except crypto.CryptoError:
            # The server's key no longer opens the old secret (key file lost or key changed):
            # rotating is how to recover, so the new secret signs alone.
            log.warning("%s: old signing secret unreadable with this key; rotating without overlap", owner)
    return Rotation(secret=secret, stored=seal(owner, secret), previous=previous, previous_expires_at=expires)
