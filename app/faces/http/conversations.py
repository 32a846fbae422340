from __future__ import annotations

from typing import Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...services import agent_runner, conversations
from ...events.payloads import ConversationJSON, conversation_json
from ..arguments import PAGE_MAX
from ..results import ConversationPageJSON, conversation_page_json
from .documented import documented
from .request_io import Body, actor, parse_body, parse_query

bp = Blueprint("conversations", __name__, url_prefix="/api/v1")


class CreateConversationBody(Body):
    title: str | None = Field(None, description="Shown in the conversation list.", examples=["Order #1042"])
    user_id: str | None = Field(None, description="The person it is with; the caller (or the API key's creator) by default.")


class ConversationList(Body):
    limit: int = Field(50, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(None, description="meta.next_cursor of the previous page.")


class ConversationAnswer(TypedDict):
    conversation: ConversationJSON


class ConversationCreated(TypedDict):
    success: Literal[True]
    conversation: ConversationJSON


class Stopped(TypedDict):
    success: Literal[True]
    stopped: bool  # false: no reply was being written


@bp.post("/agents/<agent_id>/conversations/create")
@documented("Start a conversation with an agent", body=CreateConversationBody, status=201, scope="conversations:write",
            errors=(409,))
async def create_conversation(agent_id: str) -> tuple[ConversationCreated, int]:
    principal = await actor()
    body = await parse_body(CreateConversationBody)
    conv = await conversations.create_conversation(principal, agent_id, title=body.title, user_id=body.user_id)
    return {"success": True, "conversation": conversation_json(conv)}, 201


@bp.get("/agents/<agent_id>/conversations")
@documented("List an agent's conversations", query=ConversationList, scope="conversations:read")
async def list_conversations(agent_id: str) -> ConversationPageJSON:
    args = parse_query(ConversationList)
    rows, next_cursor = await conversations.list_conversations(await actor(), agent_id, limit=args.limit, cursor=args.cursor)
    return conversation_page_json(rows, next_cursor)


@bp.get("/conversations/<conversation_id>")
@documented("Get a conversation", scope="conversations:read")
async def get_conversation(conversation_id: str) -> ConversationAnswer:
    conv = await conversations.get_conversation(await actor(), conversation_id)
    return {"conversation": conversation_json(conv)}


@bp.post("/conversations/<conversation_id>/stop")
@documented("Stop a custom agent's reply", scope="conversations:write")
async def stop(conversation_id: str) -> Stopped:
    """Stop a custom agent's reply being written: the partial text is kept as ``stopped``."""
    stopped = await agent_runner.stop_generation(await actor(), conversation_id)
    return {"success": True, "stopped": stopped}
