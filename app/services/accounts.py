"""Organizations and their first owner: bootstrap, lookup, plan."""

from __future__ import annotations

from dataclasses import dataclass

from ..kernel.auth import SCOPES, Principal
from ..kernel.errors import Conflict, ValidationFailed
from ..kernel.ids import new_id
from ..models.core import Membership, Organization, User
from ..kernel.plans import get_plan
from ..kernel.hashing import hash_password
from ..kernel.transactions import atomic
from . import api_keys
from .validation import check_name, check_password, normalize_email

__all__ = ["Bootstrapped", "bootstrap", "get_organization", "set_plan", "organization_count"]


@dataclass(frozen=True)
class Bootstrapped:
    organization: Organization
    user: User
    api_key: str


async def bootstrap(
    org_name: str, email: str, password: str, *, name: str = "", plan: str = "self-hosted"
) -> Bootstrapped:
    """Create an organization, its owner and an all-scopes API key (shown once)."""
    org_name = check_name(org_name, "org")
    email, key = normalize_email(email)
    check_password(password)
    get_plan(plan)
    async with atomic():
        if await User.filter(email_key=key).exists():
            raise Conflict(f"A user with the email {email} already exists.", code="already_exists")
        org = await Organization.create(id=new_id("organization"), name=org_name, plan=plan)
        user = await User.create(
            id=new_id("user"),
            email=email,
            email_key=key,
            name=name,
            password_hash=await hash_password(password),
        )
        await Membership.create(
            public_id=new_id("membership"), organization=org, user=user, role="owner", status="active"
        )
        raw = await api_keys.create_key_record(org, name="Bootstrap key", scopes=list(SCOPES), user=user)
    return Bootstrapped(organization=org, user=user, api_key=raw)


async def get_organization(principal: Principal) -> Organization:
    return principal.organization


async def set_plan(org_id: str, plan: str) -> Organization:
    get_plan(plan)
    org = await Organization.get_or_none(id=org_id)
    if org is None:
        raise ValidationFailed(f"No organization {org_id}.", details={"org": ["not found"]})
    org.plan = plan
    await org.save(update_fields=["plan", "updated_at"])
    return org


async def organization_count() -> int:
    return await Organization.all().count()
