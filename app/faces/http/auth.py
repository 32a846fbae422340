from __future__ import annotations

from typing import Any

from quart import Blueprint

from ...kernel.errors import RateLimited
from ...services import members, passwords, sessions
from .request_io import Body, actor, parse_body, rate_limit, settings
from .shapes import organization_json, user_json

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


class LoginBody(Body):
    email: str
    password: str
    organization_id: str | None = None


class AcceptInviteBody(Body):
    token: str
    password: str
    name: str | None = None


@bp.post("/auth/login")
async def login() -> dict[str, Any]:
    rate_limit("auth", "")
    body = await parse_body(LoginBody)
    email = body.email.strip().lower()
    rate_limit("login", email)
    rate_limit("login_account", email, per_address=False)
    token, membership = await sessions.login(
        body.email, body.password,
        ttl_seconds=settings().session_ttl_seconds, organization_id=body.organization_id,
    )
    return {"token": token, "user": user_json(membership.user, membership)}


@bp.post("/auth/logout")
async def logout() -> dict[str, Any]:
    await sessions.logout(await actor())
    return {"success": True}


@bp.post("/auth/accept-invite")
async def accept_invite() -> dict[str, Any]:
    rate_limit("auth", "")
    body = await parse_body(AcceptInviteBody)
    membership = await members.accept_invite(body.token, body.password, body.name)
    token = await sessions.open_session(membership, settings().session_ttl_seconds)
    return {"token": token, "user": user_json(membership.user, membership)}


class ResetRequestBody(Body):
    email: str


class ResetConfirmBody(Body):
    token: str
    password: str


@bp.post("/auth/password-reset")
async def request_password_reset() -> tuple[dict[str, Any], int]:
    rate_limit("auth", "")
    body = await parse_body(ResetRequestBody)
    answer = {"success": True, "message": "If the address has an account, a reset link is on its way."}
    try:
        rate_limit("password_reset", body.email.strip().lower(), per_address=False)
    except RateLimited:
        # Enough mail to that address for now; saying so would let anyone lock its owner out.
        return answer, 202
    await passwords.request_reset(body.email, ttl_seconds=settings().password_reset_ttl_seconds)
    return answer, 202


@bp.post("/auth/password-reset/confirm")
async def confirm_password_reset() -> dict[str, Any]:
    rate_limit("auth", "")
    body = await parse_body(ResetConfirmBody)
    await passwords.confirm_reset(body.token, body.password)
    return {"success": True}


@bp.get("/me")
async def me() -> dict[str, Any]:
    principal = await actor()
    user = user_json(principal.user) if principal.user else None
    if user is not None and principal.role:
        user["role"] = principal.role
    return {
        "user": user,
        "organization": organization_json(principal.organization),
        "auth": {"kind": principal.kind, "scopes": sorted(principal.scopes)},
    }
