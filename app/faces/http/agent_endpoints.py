"""``/webhooks/agents/:agent_id/...``: the agent's own endpoints for automation platforms
(the paths n8n's Lerty node calls). Bodies may be form-encoded or JSON."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...events.payloads import message_json
from ...services import agent_endpoint
from ..arguments import checked
from .documented import documented
from .envelopes import MessageSent
from .request_io import Body, actor, form_or_json

bp = Blueprint("agent_endpoints", __name__, url_prefix="/webhooks/agents")

_BODY_TYPES = ("application/json", "application/x-www-form-urlencoded")


class AgentReply(Body):
    """What the node's "reply to conversation" posts to a webhook body's ``response_webhook``."""

    conversation_id: str
    content: str
    message_id: str | None = None  # the node's own id for this reply: a repeat is 409
    timestamp: str | None = None
    user_id: str | None = None
    organization_id: str | None = None


class AgentMessage(Body):
    """The node's message object: ``agent_response`` (its fallback reply) or ``user_message``
    (its "send message")."""

    id: str | None = None
    type: str
    content: str = ""
    conversationId: str
    agentId: str | None = None
    userId: str | None = None
    timestamp: str | None = None
    fileUrl: str | None = None
    fileName: str | None = None
    fileType: str | None = None
    metadata: dict[str, Any] | None = None


@bp.post("/<agent_id>/reply")
@documented("The automation's reply to a conversation (its response_webhook)", body=AgentReply,
            body_types=_BODY_TYPES, status=201, scope="conversations:write", errors=(402, 409),
            description="With an API key. A repeated message_id is 409 duplicate_message.")
async def reply(agent_id: str) -> tuple[MessageSent, int]:
    principal = await actor()
    body = checked(AgentReply, await form_or_json())
    message = await agent_endpoint.reply(
        principal, agent_id, conversation_id=body.conversation_id, content=body.content, message_id=body.message_id,
        organization_id=body.organization_id, link_base=request.host_url,
    )
    return {"success": True, "message": message_json(message)}, 201


@bp.post("/<agent_id>/message")
@documented("A message from the automation: its reply (agent_response) or a user message", body=AgentMessage,
            body_types=_BODY_TYPES, status=201, scope="conversations:write", errors=(402, 409),
            description="With an API key. A conversationId the gateway did not issue opens a conversation named so.")
async def post_message(agent_id: str) -> tuple[MessageSent, int]:
    principal = await actor()
    body = checked(AgentMessage, await form_or_json())
    file = None
    if body.fileUrl:
        file = {"url": body.fileUrl, "name": body.fileName or "file", "type": body.fileType or "application/octet-stream"}
    message = await agent_endpoint.post(
        principal, agent_id, kind=body.type, conversation=body.conversationId, content=body.content,
        message_id=body.id, user_id=body.userId, named_agent=body.agentId, file=file, metadata=body.metadata,
        link_base=request.host_url,
    )
    return {"success": True, "message": message_json(message)}, 201
