"""Members of an organization: list, invite, accept an invitation, remove.

An invitation proves the invitee owns the mailbox when email is configured: the one-time
token is emailed and never returned to the inviter. Without email (the embedded default)
the token goes back to the inviting admin, who passes it on. Either way a pending member is
known by its membership id (``mbr_...``), never by the user id of an account that may
already exist in another organization.
"""

from __future__ import annotations

from datetime import timedelta

from tortoise.exceptions import IntegrityError

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import AuthenticationRequired, Conflict, Forbidden, NotFound, ValidationFailed
from ..kernel.ids import new_id, new_secret
from ..models.core import Membership, User
from ..models.push import Device, LiveActivityToken
from ..kernel.plans import enforce_limit
from ..kernel.hashing import hash_password, hash_token, verify_password
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from . import mail
from .push_devices import forget_device
from .validation import check_password, normalize_email

__all__ = ["list_members", "invite_member", "accept_invite", "remove_member", "get_member"]


async def list_members(principal: Principal, *, limit: int = 500, offset: int = 0) -> tuple[list[Membership], int]:
    """One page of members, oldest first, and the total."""
    require_scope(principal, "members:read")
    query = Membership.filter(organization_id=principal.org_id)
    rows = await query.select_related("user").order_by("created_at", "id").offset(offset).limit(limit)
    total = len(rows) + offset if len(rows) < limit and (rows or offset == 0) else await query.count()
    return rows, total


async def get_member(principal: Principal, member_id: str) -> Membership:
    """The membership in the principal's organization named by a user id, or by a pending
    member's membership id (``mbr_...``), else 404."""
    query = Membership.filter(organization_id=principal.org_id)
    if member_id.startswith("mbr_"):
        query = query.filter(public_id=member_id)
    else:
        query = query.filter(user_id=member_id)
    membership = await query.select_related("user").first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


async def invite_member(
    principal: Principal, email: str, *, invite_ttl_seconds: int, role: str = "member"
) -> tuple[Membership, str | None]:
    """Add a pending member; return it with the one-time invitation token, or with ``None``
    when the token was emailed to the invitee (then nobody else ever sees it)."""
    require_scope(principal, "members:write")
    if role not in ("admin", "member"):
        raise ValidationFailed(details={"role": ["must be 'admin' or 'member'"]})
    if role == "admin" and not principal.is_admin:
        raise Forbidden("Only admins can invite admins.")
    email, key = normalize_email(email)
    org = principal.organization
    token = new_secret("inv", 43)
    async with atomic():
        user = await User.get_or_none(email_key=key)
        if user is not None and await Membership.filter(organization=org, user=user).exists():
            raise Conflict(f"{email} is already a member of this organization.", code="already_member")
        await enforce_limit(org.plan, "members", lambda: Membership.filter(organization=org).count())
        if user is None:
            user = await User.create(id=new_id("user"), email=email, email_key=key)
        try:
            membership = await Membership.create(
                public_id=new_id("membership"),
                invited_email=email,
                organization=org,
                user=user,
                role=role,
                status="pending",
                invite_token_hash=hash_token(token),
                invite_expires_at=utcnow() + timedelta(seconds=invite_ttl_seconds),
                invited_by=principal.user,
            )
        except IntegrityError as exc:  # a concurrent invite of the same email won
            raise Conflict(f"{email} is already a member of this organization.", code="already_member") from exc
        if mail.enabled():
            inviter = principal.user.name or principal.user.email if principal.user is not None else None
            await mail.send_invitation(
                organization_id=org.id,
                organization_name=org.name,
                inviter=inviter,
                to=email,
                token=token,
                valid_for=invite_ttl_seconds,
            )
    membership.user = user
    return membership, None if mail.enabled() else token


async def accept_invite(token: str, password: str, name: str | None) -> Membership:
    """Activate a pending membership. A person who already has an account proves it with
    their existing password; a new person sets one."""
    invalid = AuthenticationRequired("This invitation is invalid or has expired.", code="invalid_invite")
    if not token:
        raise invalid
    async with atomic():
        membership = (
            await Membership.filter(invite_token_hash=hash_token(token), status="pending")
            .select_related("user", "organization")
            .first()
        )
        if membership is None or (membership.invite_expires_at and membership.invite_expires_at < utcnow()):
            raise invalid
        user = membership.user
        if user.password_hash:
            if not await verify_password(user.password_hash, password):
                raise AuthenticationRequired("Invalid email or password.")
        else:
            check_password(password)
            user.password_hash = await hash_password(password)
        if name is not None:
            user.name = name.strip()[:200]
        await user.save()
        # Conditional update: two accepts of one token activate it once.
        updated = await Membership.filter(id=membership.id, status="pending").update(
            status="active", invite_token_hash=None, invite_expires_at=None
        )
        if not updated:
            raise invalid
    membership.status = "active"
    return membership


async def remove_member(principal: Principal, member_id: str) -> None:
    require_scope(principal, "members:write")
    membership = await get_member(principal, member_id)
    if membership.role == "owner":
        raise Forbidden("The organization's owner cannot be removed.", code="owner_not_removable")
    if membership.role == "admin" and not principal.is_admin:
        raise Forbidden("Only admins can remove admins.")
    async with atomic():
        await membership.delete()
        # Their phones and browsers stop getting this organization's pushes and activities.
        mine = {"organization_id": membership.organization_id, "user_id": membership.user_id}  # type: ignore[attr-defined]
        for device_id in await Device.filter(**mine).values_list("id", flat=True):
            await forget_device(str(device_id), "cancelled: the member was removed")
        await Device.filter(**mine).delete()
        await LiveActivityToken.filter(**mine).delete()
