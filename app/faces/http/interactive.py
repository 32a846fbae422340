"""Interactive messages: send (an agent, with an API key), answer (a person, with a session
token), read with an optional long-poll."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field
from quart import Blueprint, request
from typing_extensions import TypedDict

from ...events.payloads import MessageJSON, message_json
from ...kernel.auth import token_from_headers
from ...services import action_tokens, interactive
from ...services.validation import MAX_WAIT_SECONDS
from ..arguments import InteractiveSend, moment
from .documented import documented
from .envelopes import MessageSent
from .request_io import Body, actor, parse_body, parse_query, json_object, settings

bp = Blueprint("interactive", __name__, url_prefix="/api/v1")


# Checked against the message's action by the service (one rule for every face); typed here
# for the schema.
class InteractiveAnswer(Body):
    """The keys the message's action asks for: approved (and message) for boolean, selection for
    buttons, data for fields."""

    model_config = ConfigDict(**Body.model_config, json_schema_extra={"examples": [{"approved": False, "message": "Not this week."}]})

    approved: Any = Field(None, json_schema_extra={"type": "boolean"}, description="A boolean action's answer.")
    message: Any = Field(None, json_schema_extra={"type": ["string", "null"]},
                         description="A boolean action's comment (required when rejecting, if the action says so).")
    selection: Any = Field(None, json_schema_extra={"type": "string"}, description="A buttons action's chosen value.")
    data: Any = Field(None, json_schema_extra={"type": "object"}, description="A fields action's values by input name.")


class MessageWait(Body):
    wait: float = Field(0, description="Seconds to wait for an answer while the message is pending.",
                        json_schema_extra={"minimum": 0, "maximum": MAX_WAIT_SECONDS})


class MessageAnswer(TypedDict):
    message: MessageJSON


@bp.post("/conversations/<conversation_id>/interactive")
@documented("Send an interactive message (approve/reject, buttons, a form)", body=InteractiveSend, status=201,
            scope="conversations:write", errors=(409,))
async def send(conversation_id: str) -> tuple[MessageSent, int]:
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
@documented("Answer an interactive message", body=InteractiveAnswer, scope="conversations:write", errors=(409,))
async def respond(message_id: str) -> MessageSent:
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
@documented("Get a message, optionally waiting for its answer", query=MessageWait, scope="conversations:read")
async def get_message(message_id: str) -> MessageAnswer:
    principal = await actor()
    wait = parse_query(MessageWait).wait
    message, interaction = await interactive.get_message(principal, message_id, wait=wait)
    return {"message": message_json(message, interaction)}
