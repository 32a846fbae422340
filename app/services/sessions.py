"""People logging in and out of the web and mobile clients."""

from __future__ import annotations

from datetime import timedelta

from ..kernel.auth import SESSION_PREFIX, Principal
from ..kernel.errors import AuthenticationRequired
from ..kernel.ids import new_id, new_secret
from ..models.core import Membership, Session, User
from ..kernel.hashing import hash_token, verify_password
from ..kernel.timefmt import utcnow

__all__ = ["login", "logout", "open_session"]

_BAD_LOGIN = "Invalid email or password."


async def open_session(membership: Membership, ttl_seconds: int) -> str:
    token = new_secret(SESSION_PREFIX.rstrip("_"), 43)
    await Session.create(
        id=new_id("session"),
        token_hash=hash_token(token),
        membership=membership,
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    return token


async def login(
    email: str, password: str, *, ttl_seconds: int, organization_id: str | None = None
) -> tuple[str, Membership]:
    """Same answer and same work whether the email or the password is wrong."""
    user = await User.get_or_none(email_key=(email or "").strip().lower())
    ok = await verify_password(user.password_hash if user else None, password or "")
    if user is None or not ok:
        raise AuthenticationRequired(_BAD_LOGIN)
    memberships = Membership.filter(user=user, status="active").select_related("organization", "user")
    if organization_id:
        memberships = memberships.filter(organization_id=organization_id)
    membership = await memberships.order_by("created_at", "id").first()
    if membership is None:
        raise AuthenticationRequired(_BAD_LOGIN)
    return await open_session(membership, ttl_seconds), membership


async def logout(principal: Principal) -> None:
    if principal.session_id:
        await Session.filter(id=principal.session_id).update(revoked_at=utcnow())
