from __future__ import annotations

from typing import Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import NotRequired, TypedDict

from ...kernel.timefmt import iso
from ...services import callbacks, members
from ...store.shapes import ListMeta
from ..arguments import MAX_INT
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, parse_body, parse_query, settings
from .shapes import MemberJSON, OrganizationJSON, member_json, organization_json

bp = Blueprint("organization", __name__, url_prefix="/api/v1/organization")


class InviteBody(Body):
    email: str = Field(examples=["ada@example.com"])
    role: str = Field("member", description="member or admin.")


class MemberList(Body):
    limit: int = Field(500, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_INT)


class OrganizationAnswer(TypedDict):
    organization: OrganizationJSON


class MemberPage(TypedDict):
    members: list[MemberJSON]
    meta: ListMeta


class MemberInvited(TypedDict):
    member: MemberJSON
    invite_token: NotRequired[str]  # when no email was sent: hand it to the invitee yourself
    invite_emailed: bool


class CallbackSecret(TypedDict):
    callback_secret: str
    previous_secret_expires_at: str | None


class CallbackSecretRotated(CallbackSecret):
    success: Literal[True]


@bp.get("")
@documented("Get the caller's organization", scope="organizations:read")
async def get_organization() -> OrganizationAnswer:
    principal = await actor("organizations:read")
    return {"organization": organization_json(principal.organization)}


@bp.get("/members")
@documented("List members and pending invitations", query=MemberList, scope="members:read")
async def list_members() -> MemberPage:
    args = parse_query(MemberList)
    limit, offset = args.limit, args.offset
    rows, total = await members.list_members(await actor(), limit=limit, offset=offset)
    return {"members": [member_json(m) for m in rows], "meta": {"total": total, "limit": limit, "offset": offset}}


@bp.post("/members")
@documented("Invite a member", body=InviteBody, status=201, scope="members:write", errors=(402, 409))
async def invite_member() -> tuple[MemberInvited, int]:
    principal = await actor()
    body = await parse_body(InviteBody)
    membership, token = await members.invite_member(
        principal, body.email, role=body.role, invite_ttl_seconds=settings().invite_ttl_seconds
    )
    if token is None:  # emailed to the invitee: nobody else sees it
        return {"member": member_json(membership), "invite_emailed": True}, 201
    # Only callers allowed to invite (admins, members:write keys) ever reach this line.
    return {"member": member_json(membership), "invite_token": token, "invite_emailed": False}, 201


@bp.delete("/members/<member_id>")
@documented("Remove a member or cancel an invitation", scope="members:write", errors=(409,))
async def remove_member(member_id: str) -> Success:
    await members.remove_member(await actor(), member_id)
    return {"success": True}


@bp.get("/callback-secret")
@documented("Get the secret that signs interactive-message callbacks", role="admin")
async def get_callback_secret() -> CallbackSecret:
    secret, previous_until = await callbacks.get_secret(await actor())
    return {"callback_secret": secret, "previous_secret_expires_at": iso(previous_until)}


@bp.post("/callback-secret/rotate")
@documented("Rotate the callback secret (the previous one signs for a while longer)", role="admin", errors=(409,))
async def rotate_callback_secret() -> CallbackSecretRotated:
    secret, previous_until = await callbacks.rotate_secret(await actor())
    return {"success": True, "callback_secret": secret, "previous_secret_expires_at": iso(previous_until)}
