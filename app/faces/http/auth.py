from __future__ import annotations

from typing import Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...kernel.errors import RateLimited
from ...services import members, passwords, sessions
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, parse_body, rate_limit, settings
from .shapes import OrganizationJSON, UserJSON, organization_json, user_json

bp = Blueprint("auth", __name__, url_prefix="/api/v1")


class LoginBody(Body):
    email: str = Field(examples=["ada@example.com"])
    password: str
    organization_id: str | None = Field(None, description="Which organization, for a person in more than one.")


class AcceptInviteBody(Body):
    token: str = Field(description="The invitation's token (from its email, or invite_token).")
    password: str = Field(description="A new person sets one; a person with an account gives theirs.")
    name: str | None = None


class SignedIn(TypedDict):
    token: str  # st_...: send as Authorization: Bearer
    user: UserJSON


class ResetRequested(TypedDict):
    success: Literal[True]
    message: str


class AuthJSON(TypedDict):
    kind: str  # api_key | session
    scopes: list[str]


class Me(TypedDict):
    user: UserJSON | None  # an API key's creator; null once they are gone
    organization: OrganizationJSON
    auth: AuthJSON


@bp.post("/auth/login")
@documented("Sign in: a session token for the web and mobile clients", body=LoginBody, auth=False, errors=(401, 429))
async def login() -> SignedIn:
    await rate_limit("auth", "")
    body = await parse_body(LoginBody)
    email = body.email.strip().lower()
    await rate_limit("login", email)
    await rate_limit("login_account", email, per_address=False)
    token, membership = await sessions.login(
        body.email, body.password,
        ttl_seconds=settings().session_ttl_seconds, organization_id=body.organization_id,
    )
    return {"token": token, "user": user_json(membership.user, membership)}


@bp.post("/auth/logout")
@documented("Sign out: the session token stops working")
async def logout() -> Success:
    await sessions.logout(await actor())
    return {"success": True}


@bp.post("/auth/accept-invite")
@documented("Accept an invitation: the new member is signed in", body=AcceptInviteBody, auth=False, errors=(401, 409, 429))
async def accept_invite() -> SignedIn:
    await rate_limit("auth", "")
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
@documented("Ask for a password reset email", body=ResetRequestBody, status=202, auth=False, errors=(429, 503),
            description="The answer is the same whether the address has an account or not.")
async def request_password_reset() -> tuple[ResetRequested, int]:
    await rate_limit("auth", "")
    body = await parse_body(ResetRequestBody)
    answer: ResetRequested = {"success": True, "message": "If the address has an account, a reset link is on its way."}
    try:
        await rate_limit("password_reset", body.email.strip().lower(), per_address=False)
    except RateLimited:
        # Enough mail to that address for now; saying so would let anyone lock its owner out.
        return answer, 202
    await passwords.request_reset(body.email, ttl_seconds=settings().password_reset_ttl_seconds)
    return answer, 202


@bp.post("/auth/password-reset/confirm")
@documented("Set a new password with a reset token", body=ResetConfirmBody, auth=False, errors=(401, 429))
async def confirm_password_reset() -> Success:
    await rate_limit("auth", "")
    body = await parse_body(ResetConfirmBody)
    await passwords.confirm_reset(body.token, body.password)
    return {"success": True}


@bp.get("/me")
@documented("Who is calling: the person, the organization, the scopes")
async def me() -> Me:
    principal = await actor()
    user = user_json(principal.user) if principal.user else None
    if user is not None and principal.role:
        user["role"] = principal.role
    return {
        "user": user,
        "organization": organization_json(principal.organization),
        "auth": {"kind": principal.kind, "scopes": sorted(principal.scopes)},
    }
