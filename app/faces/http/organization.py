from __future__ import annotations

from typing import Any

from quart import Blueprint

from ...kernel.timefmt import iso
from ...services import callbacks, members
from .request_io import Body, actor, parse_body, query_int, settings
from .shapes import member_json, organization_json

bp = Blueprint("organization", __name__, url_prefix="/api/v1/organization")


class InviteBody(Body):
    email: str
    role: str = "member"


@bp.get("")
async def get_organization() -> dict[str, Any]:
    principal = await actor("organizations:read")
    return {"organization": organization_json(principal.organization)}


@bp.get("/members")
async def list_members() -> dict[str, Any]:
    limit, offset = query_int("limit", 500, minimum=1, maximum=1000), query_int("offset", 0)
    rows, total = await members.list_members(await actor(), limit=limit, offset=offset)
    return {"members": [member_json(m) for m in rows], "meta": {"total": total, "limit": limit, "offset": offset}}


@bp.post("/members")
async def invite_member() -> tuple[dict[str, Any], int]:
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
async def remove_member(member_id: str) -> dict[str, Any]:
    await members.remove_member(await actor(), member_id)
    return {"success": True}


@bp.get("/callback-secret")
async def get_callback_secret() -> dict[str, Any]:
    secret, previous_until = await callbacks.get_secret(await actor())
    return {"callback_secret": secret, "previous_secret_expires_at": iso(previous_until)}


@bp.post("/callback-secret/rotate")
async def rotate_callback_secret() -> dict[str, Any]:
    secret, previous_until = await callbacks.rotate_secret(await actor())
    return {"success": True, "callback_secret": secret, "previous_secret_expires_at": iso(previous_until)}
