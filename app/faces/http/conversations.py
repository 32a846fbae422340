from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...services import agent_runner, conversations
from ...events.payloads import conversation_json
from ..arguments import PAGE_MAX
from ..results import conversation_page_json
from .request_io import Body, actor, parse_body, query_int

bp = Blueprint("conversations", __name__, url_prefix="/api/v1")


class CreateConversationBody(Body):
    title: str | None = None
    user_id: str | None = None


@bp.post("/agents/<agent_id>/conversations/create")
async def create_conversation(agent_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(CreateConversationBody)
    conv = await conversations.create_conversation(principal, agent_id, title=body.title, user_id=body.user_id)
    return {"success": True, "conversation": conversation_json(conv)}, 201


@bp.get("/agents/<agent_id>/conversations")
async def list_conversations(agent_id: str) -> dict[str, Any]:
    limit = query_int("limit", 50, minimum=1, maximum=PAGE_MAX)
    rows, next_cursor = await conversations.list_conversations(
        await actor(), agent_id, limit=limit, cursor=request.args.get("cursor") or None
    )
    return conversation_page_json(rows, next_cursor)


@bp.get("/conversations/<conversation_id>")
async def get_conversation(conversation_id: str) -> dict[str, Any]:
    conv = await conversations.get_conversation(await actor(), conversation_id)
    return {"conversation": conversation_json(conv)}


@bp.post("/conversations/<conversation_id>/stop")
async def stop(conversation_id: str) -> dict[str, Any]:
    """Stop a custom agent's reply being written: the partial text is kept as ``stopped``."""
    stopped = await agent_runner.stop_generation(await actor(), conversation_id)
    return {"success": True, "stopped": stopped}
