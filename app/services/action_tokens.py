"""One-time tokens that answer one interactive message from a notification.

A push for an approval carries a token (``act_...``, stored as a hash) bound to the message
and its recipient. ``POST /api/v1/messages/:id/respond`` with ``Authorization: Bearer
act_...`` answers as that person and nothing more: the token authenticates no other
request (``authenticate_token`` refuses its prefix), works once, for this message, until it
expires; once anyone has answered the message, it can only get the 409 that says so.
"""

from __future__ import annotations

from datetime import datetime

from ..kernel.auth import Principal
from ..kernel.errors import AuthenticationRequired
from ..kernel.hashing import hash_token
from ..kernel.ids import new_id, new_secret
from ..kernel.timefmt import utcnow
from ..models.core import Membership, Organization, User
from ..models.push import ActionToken
__all__ = ["PREFIX", "is_action_token", "issue", "redeem", "spend"]

PREFIX = "act_"
TOKEN_LENGTH = 43  # characters after the prefix
INVALID = "This action token is not valid for this message: it was used, has expired, or belongs to another message."


def is_action_token(token: str | None) -> bool:
    return bool(token) and str(token).startswith(PREFIX)


async def issue(*, organization_id: str, user_id: str, message_id: str, expires_at: datetime) -> str:
    """A new token (returned once; only its hash is kept), in the caller's transaction."""
    token = new_secret("act", TOKEN_LENGTH)
    await ActionToken.create(
        id=new_id("action_token"),
        token_hash=hash_token(token),
        organization_id=organization_id,
        user_id=user_id,
        message_id=message_id,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    return token


async def redeem(token: str, message_id: str) -> tuple[Principal, str]:
    """(a principal that may answer ``message_id`` as the token's person, the token's id);
    401 for anything else."""
    now = utcnow()
    row = await ActionToken.get_or_none(token_hash=hash_token(token))
    if row is None or row.message_id != message_id or row.used_at is not None or row.expires_at <= now:
        raise AuthenticationRequired(INVALID, code="invalid_action_token")
    membership = await Membership.get_or_none(organization_id=row.organization_id, user_id=row.user_id, status="active")
    organization = await Organization.get_or_none(id=row.organization_id)
    user = await User.get_or_none(id=row.user_id)
    if membership is None or organization is None or user is None:
        raise AuthenticationRequired(INVALID, code="invalid_action_token")
    principal = Principal(organization=organization, kind="action_token", scopes=frozenset({"conversations:write"}), user=user)
    return principal, row.id


async def spend(token_id: str) -> None:
    await ActionToken.filter(id=token_id, used_at__isnull=True).update(used_at=utcnow())
