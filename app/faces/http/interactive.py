"""Interactive messages: send (an agent, with an API key), answer (a person, with a session
token), read with an optional long-poll."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...events.payloads import message_json
from ...kernel.errors import ValidationFailed
from ...kernel.auth import token_from_headers
from ...services import action_tokens, interactive
from ..arguments import InteractiveSend, moment
from .request_io import actor, parse_body, json_object, settings

bp = Blueprint("interactive", __name__, url_prefix="/api/v1")




@bp.post("/conversations/<conversation_id>/interactive")
async def send(conversation_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(InteractiveSend)
    message, interaction = await interactive.send_interactive(
        principal,
        conversation_id,
        callback_url=body.callback_url,
        callback_id=body.callback_id,
        elements=body.elements,
        expires_at=moment(body.expires_at, "expires_at"),
        allow_private=settings().allow_private_webhooks,
    )
    return {"success": True, "message": message_json(message, interaction)}, 201


@bp.post("/messages/<message_id>/respond")
async def respond(message_id: str) -> dict[str, Any]:
    """A person's session token, or the one-time action token of a notification."""
    token = token_from_headers(request.headers)
    principal = None if action_tokens.is_action_token(token) else await actor()
    answer = await json_object()
    if principal is None:
        message, interaction = await interactive.respond_with_token(str(token), message_id, answer)
    else:
        message, interaction = await interactive.respond(principal, message_id, answer)
    return {"success": True, "message": message_json(message, interaction)}


@bp.get("/messages/<message_id>")
async def get_message(message_id: str) -> dict[str, Any]:
    principal = await actor()
    raw = request.args.get("wait") or "0"
    try:
        wait = float(raw)
    except ValueError:
        raise ValidationFailed(details={"wait": ["must be a number of seconds"]}) from None
    message, interaction = await interactive.get_message(principal, message_id, wait=wait)
    return {"message": message_json(message, interaction)}
