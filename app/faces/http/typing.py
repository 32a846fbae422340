"""``POST /api/agents/:agent_id/callback`` (no ``/v1``, as the contract has it)."""

from __future__ import annotations

from typing import Any, Literal

from quart import Blueprint

from ...kernel.errors import ValidationFailed
from ...services import typing_indicators as typing_service
from ..arguments import TypingData
from .documented import documented
from .envelopes import Success
from .request_io import Body, actor, parse_body

bp = Blueprint("typing", __name__, url_prefix="/api/agents")




class CallbackBody(Body):
    callback_type: str
    conversation_id: str | None = None
    data: dict[str, Any] | None = None


class TypingCallback(Body):
    callback_type: Literal["typing"]
    conversation_id: str
    data: TypingData


@bp.post("/<agent_id>/callback")
@documented("Show or clear the agent's typing indicator", body=TypingCallback, scope="conversations:write",
            description="With an API key (an agent's automation); agents:write also allows it.")
async def callback(agent_id: str) -> Success:
    principal = await actor()
    body = await parse_body(CallbackBody)
    if body.callback_type != "typing":
        raise ValidationFailed(
            f"Unknown callback_type '{body.callback_type}'.",
            details={"callback_type": ['must be "typing"']},
        )
    parsed = await parse_body(TypingCallback)
    await typing_service.set_typing(
        principal,
        agent_id,
        parsed.conversation_id,
        typing=parsed.data.typing,
        label=parsed.data.label,
        show_dots=parsed.data.show_dots,
        timeout_ms=parsed.data.timeout,
    )
    return {"success": True}
