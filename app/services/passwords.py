"""Password reset by email: proving the mailbox is how an account is recovered (also one
whose address someone else claimed first with a password of their own).

``request_reset`` answers the same whether the address has an account or not; the token
is emailed, stored only as a hash, used once, and valid ``password_reset_ttl_seconds``.
Setting a new password ends every session of the account and every other open reset.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from ..kernel.errors import AuthenticationRequired, Unavailable
from ..kernel.hashing import hash_password, hash_token
from ..kernel.ids import new_id, new_secret
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.core import Membership, PasswordReset, Session, User
from . import mail
from .validation import check_password, normalize_email

__all__ = ["request_reset", "confirm_reset"]

log = logging.getLogger("switchboard.passwords")

_INVALID = "This reset token is invalid, used or expired."


async def request_reset(email: str, *, ttl_seconds: int) -> None:
    """Check the request, then look the address up and queue the email after answering: the
    caller's wait is the same whether the address has an account or not."""
    if not mail.enabled():
        raise Unavailable(
            "Password reset needs email, and this server has no SMTP server configured "
            "(SWITCHBOARD_SMTP_URL). Ask an administrator.",
            code="email_not_configured",
        )
    _, key = normalize_email(email)
    task = asyncio.create_task(_send_reset(key, ttl_seconds), name="password-reset")
    _pending.add(task)
    task.add_done_callback(_done)


_pending: set[asyncio.Task[None]] = set()


def _done(task: asyncio.Task[None]) -> None:
    _pending.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("password reset could not be queued", exc_info=task.exception())


async def _send_reset(key: str, ttl_seconds: int) -> None:
    user = await User.get_or_none(email_key=key)
    if user is None:
        return  # an address is never confirmed or denied
    token = new_secret("prt", 43)
    async with atomic():
        await PasswordReset.create(
            id=new_id("password_reset"),
            user=user,
            token_hash=hash_token(token),
            expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        )
        await mail.send_password_reset(to=user.email, token=token, valid_for=ttl_seconds)


async def confirm_reset(token: str, password: str) -> User:
    check_password(password)
    invalid = AuthenticationRequired(_INVALID, code="invalid_reset_token")
    if not token:
        raise invalid
    password_hash = await hash_password(password)
    now = utcnow()
    async with atomic():
        reset = await PasswordReset.filter(token_hash=hash_token(token), used_at=None).select_related("user").first()
        if reset is None or reset.expires_at < now:
            raise invalid
        # Conditional: two confirms of one token change the password once.
        if not await PasswordReset.filter(id=reset.id, used_at=None).update(used_at=now):
            raise invalid
        user = reset.user
        user.password_hash = password_hash
        await user.save(update_fields=["password_hash"])
        await PasswordReset.filter(user_id=user.id, used_at=None).update(used_at=now)
        memberships = await Membership.filter(user_id=user.id).values_list("id", flat=True)
        await Session.filter(membership_id__in=list(memberships), revoked_at=None).update(revoked_at=now)
    return user
