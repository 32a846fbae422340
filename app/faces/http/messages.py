from __future__ import annotations

from typing import Literal

from pydantic import Field
from quart import Blueprint, request
from typing_extensions import NotRequired, TypedDict

from ...services import messages, replies
from ...events.payloads import MessageJSON, message_json
from ..arguments import MAX_INT, PAGE_MAX, Originate, UserMessage
from ..results import MessagePageJSON, message_page_json
from .documented import documented
from .envelopes import MessageSent
from .request_io import Body, actor, parse_body, parse_query

bp = Blueprint("messages", __name__, url_prefix="/api/v1/conversations")


class MessageList(Body):
    after_seq: int | None = Field(None, ge=0, le=MAX_INT, description="Only messages after this sequence number.")
    before_seq: int | None = Field(None, ge=0, le=MAX_INT, description="Only messages before this sequence number.")
    limit: int = Field(50, ge=1, le=PAGE_MAX)


class UserMessageSent(TypedDict):
    success: Literal[True]
    message: MessageJSON
    reply: NotRequired[MessageJSON | None]  # with wait: the agent's reply, null if none came in time


@bp.post("/<conversation_id>/messages")
@documented("Send a message as a person (optionally waiting for the agent's reply)", body=UserMessage, status=201,
            scope="conversations:write", errors=(402, 409))
async def send_message(conversation_id: str) -> tuple[UserMessageSent, int]:
    principal = await actor()
    body = await parse_body(UserMessage)
    message, reply = await replies.send_and_wait(
        principal, conversation_id, body.content, wait=body.wait, attachments=body.attachments, link_base=request.host_url
    )
    out: UserMessageSent = {"success": True, "message": message_json(message)}
    if body.wait is not None:
        out["reply"] = message_json(reply) if reply is not None else None
    return out, 201


@bp.post("/<conversation_id>/originate")
@documented("Post the agent's message (an automation answering)", body=Originate, status=201,
            scope="conversations:write", errors=(402, 409))
async def originate(conversation_id: str) -> tuple[MessageSent, int]:
    principal = await actor()
    body = await parse_body(Originate)
    message = await messages.originate(
        principal, conversation_id, body.content, role=body.role, external_message_id=body.external_message_id,
        attachments=body.attachments, link_base=request.host_url,
    )
    return {"success": True, "message": message_json(message)}, 201


@bp.get("/<conversation_id>/messages")
@documented("List a conversation's messages in order", query=MessageList, scope="conversations:read")
async def list_messages(conversation_id: str) -> MessagePageJSON:
    args = parse_query(MessageList)
    page = await messages.list_messages(
        await actor(), conversation_id, after_seq=args.after_seq, before_seq=args.before_seq, limit=args.limit,
        link_base=request.host_url,
    )
    return message_page_json(page)
