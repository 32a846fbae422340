"""JSON shapes of the foundation's objects, as the contract shows them."""

from __future__ import annotations

from typing_extensions import NotRequired, TypedDict

from ...models.core import ApiKey, Membership, Organization, User
from ...kernel.timefmt import iso

__all__ = [
    "OrganizationJSON", "UserJSON", "MemberJSON", "ApiKeyJSON",
    "organization_json", "user_json", "member_json", "api_key_json",
]


class OrganizationJSON(TypedDict):
    id: str
    name: str
    plan: str
    timezone: str


class UserJSON(TypedDict):
    id: str
    email: str
    name: str
    role: NotRequired[str]  # owner | admin | member
    organization_id: NotRequired[str]


class MemberJSON(TypedDict):
    id: str
    email: str
    role: str
    name: str
    status: str  # active | pending
    joined_at: str | None


class ApiKeyJSON(TypedDict):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    enabled: bool
    created_by: str | None
    created_at: str | None


def organization_json(org: Organization) -> OrganizationJSON:
    return {"id": org.id, "name": org.name, "plan": org.plan, "timezone": org.timezone}


def user_json(user: User, membership: Membership | None = None) -> UserJSON:
    out: UserJSON = {"id": user.id, "email": user.email, "name": user.name}
    if membership is not None:
        out["role"] = membership.role
        out["organization_id"] = membership.organization_id  # type: ignore[attr-defined]
    return out


def member_json(m: Membership) -> MemberJSON:
    """A pending member is known by its membership id: the invitee's user id (an account
    that may exist in another organization) is shown once they accept."""
    active = m.status == "active"
    return {
        "id": m.user.id if active or not m.public_id else m.public_id,
        "email": m.user.email if active or not m.invited_email else m.invited_email,
        "role": m.role,
        # A pending invitee may already have an account elsewhere: its name is not ours to show.
        "name": m.user.name if active else "",
        "status": m.status,
        "joined_at": iso(m.created_at),
    }


def api_key_json(key: ApiKey) -> ApiKeyJSON:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "enabled": key.enabled,
        "created_by": key.created_by_id,  # type: ignore[attr-defined]
        "created_at": iso(key.created_at),
    }
