from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict
from quart import Blueprint, request

from ...services import agents, conversations, messages
from ...services.agents import UNSET
from ...events.payloads import conversation_json, message_json
from .chat_shapes import agent_json
from ..arguments import Originate
from .request_io import Body, actor, parse_body, query_bool, query_int, settings

bp = Blueprint("agents", __name__, url_prefix="/api/v1/agents")


class _Settings(Body):
    """The custom-agent settings (checked by the service, which names each bad field); any
    other key is refused, so a misspelt setting is not dropped silently."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: Any = None
    model: Any = None
    system_prompt: Any = None
    temperature: Any = None
    max_tokens: Any = None
    mcp_servers: Any = None
    credential_id: Any = None
    base_url: Any = None


class CreateAgentBody(_Settings):
    name: str
    protocol: Literal["webhook", "custom"] = "webhook"
    webhook_url: str | None = None
    test_webhook_url: str | None = None
    enabled: bool = True


class UpdateAgentBody(_Settings):
    name: str | None = None
    webhook_url: str | None = None
    test_webhook_url: str | None = None
    enabled: bool | None = None
    test_mode: bool | None = None


class AgentMessageBody(Originate):
    conversation_id: str
    role: str = "assistant"


def _config(body: _Settings) -> dict[str, Any]:
    """The settings the body names (``null`` removes one)."""
    return {k: getattr(body, k) for k in agents.CONFIG_KEYS if k in body.model_fields_set}


@bp.post("")
async def create_agent() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await parse_body(CreateAgentBody)
    agent, secret = await agents.create_agent(
        principal,
        name=body.name,
        protocol=body.protocol,
        webhook_url=body.webhook_url,
        test_webhook_url=body.test_webhook_url,
        enabled=body.enabled,
        config=_config(body),
        allow_private_webhooks=settings().allow_private_webhooks,
    )
    return {"success": True, "agent": {**agent_json(agent, detailed=True), "signing_secret": secret}}, 201


@bp.get("")
async def list_agents() -> dict[str, Any]:
    detailed = query_bool("detailed")
    limit, offset = query_int("limit", 500, minimum=1, maximum=1000), query_int("offset", 0)
    principal = await actor()
    rows, has_more = await agents.list_agents(principal, limit=limit, offset=offset)
    show = agents.may_see_urls(principal)
    return {
        "agents": [agent_json(a, detailed=detailed, show_urls=show) for a in rows],
        "meta": {"limit": limit, "offset": offset, "has_more": has_more},
    }


@bp.get("/<agent_id>")
async def get_agent(agent_id: str) -> dict[str, Any]:
    detailed = query_bool("detailed")
    principal = await actor()
    agent = await agents.get_agent(principal, agent_id)
    return {"agent": agent_json(agent, detailed=detailed, show_urls=agents.may_see_urls(principal))}


@bp.patch("/<agent_id>")
async def update_agent(agent_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await parse_body(UpdateAgentBody)
    given = body.model_fields_set
    agent = await agents.update_agent(
        principal,
        agent_id,
        name=body.name,
        webhook_url=body.webhook_url if "webhook_url" in given else UNSET,
        test_webhook_url=body.test_webhook_url if "test_webhook_url" in given else UNSET,
        enabled=body.enabled,
        test_mode=body.test_mode,
        config=_config(body) or None,
        allow_private_webhooks=settings().allow_private_webhooks,
    )
    return {"success": True, "agent": agent_json(agent, detailed=True)}


@bp.delete("/<agent_id>")
async def delete_agent(agent_id: str) -> dict[str, Any]:
    await agents.delete_agent(await actor(), agent_id)
    return {"success": True}


@bp.post("/<agent_id>/rotate-secret")
async def rotate_secret(agent_id: str) -> dict[str, Any]:
    agent, secret = await agents.rotate_secret(await actor(), agent_id)
    return {
        "success": True,
        "signing_secret": secret,
        "previous_secret_expires_at": agent_json(agent, detailed=True)["previous_secret_expires_at"],
    }


@bp.post("/<agent_id>/messages")
async def send_agent_message(agent_id: str) -> tuple[dict[str, Any], int]:
    """The ``send_message`` endpoint of connection-info: originate, addressed by agent."""
    principal = await actor()
    body = await parse_body(AgentMessageBody)
    message = await messages.originate(
        principal,
        body.conversation_id,
        body.content,
        role=body.role,
        external_message_id=body.external_message_id,
        agent_id=agent_id,
        attachments=body.attachments,
        link_base=request.host_url,
    )
    return {"success": True, "message": message_json(message)}, 201


@bp.get("/<agent_id>/connection-info")
async def connection_info(agent_id: str) -> dict[str, Any]:
    principal = await actor()
    agent = await agents.get_agent(principal, agent_id)
    recent = await conversations.recent_conversations(principal, agent.id)
    base = (settings().public_url or request.host_url).rstrip("/")
    return {
        "connection_info": {
            "agent_id": agent.id,
            "agent_name": agent.name,
            "webhook_url": agent.webhook_url if agents.may_see_urls(principal) else None,
            "protocol": agent.protocol,
            "conversations": [conversation_json(c) for c in recent],
            "api_endpoints": {
                "send_message": f"{base}/api/v1/agents/{agent.id}/messages",
                "create_conversation": f"{base}/api/v1/agents/{agent.id}/conversations/create",
                "list_conversations": f"{base}/api/v1/agents/{agent.id}/conversations",
                "originate": f"{base}/api/v1/conversations/{{conversation_id}}/originate",
                "typing": f"{base}/api/agents/{agent.id}/callback",
            },
        }
    }
