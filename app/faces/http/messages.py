from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...services import messages
from ...events.payloads import message_json
from ..arguments import PAGE_MAX, Originate, UserMessage
from ..results import message_page_json
from .request_io import actor, parse_body, query_int

bp = Blueprint("messages", __name__, url_prefix="/api/v1/conversations")


@bp.post("/<conversation_id>/messages")
async def send_message(conversation_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(UserMessage)
    message = await messages.send_user_message(
        principal, conversation_id, body.content, attachments=body.attachments, link_base=request.host_url
    )
    return {"success": True, "message": message_json(message)}, 201


@bp.post("/<conversation_id>/originate")
async def originate(conversation_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(Originate)
    message = await messages.originate(
        principal, conversation_id, body.content, role=body.role, external_message_id=body.external_message_id,
        attachments=body.attachments, link_base=request.host_url,
    )
    return {"success": True, "message": message_json(message)}, 201


@bp.get("/<conversation_id>/messages")
async def list_messages(conversation_id: str) -> dict[str, Any]:
    after = request.args.get("after_seq")
    before = request.args.get("before_seq")
    page = await messages.list_messages(
        await actor(),
        conversation_id,
        after_seq=query_int("after_seq", 0) if after not in (None, "") else None,
        before_seq=query_int("before_seq", 0) if before not in (None, "") else None,
        limit=query_int("limit", 50, minimum=1, maximum=PAGE_MAX),
        link_base=request.host_url,
    )
    return message_page_json(page)
