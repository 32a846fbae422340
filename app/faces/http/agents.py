from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field
from quart import Blueprint, request
from typing_extensions import NotRequired, TypedDict

from ...services import agents, conversations, messages, webhook_check
from ...services.agents import UNSET
from ...events.payloads import ConversationJSON, conversation_json, message_json
from .chat_shapes import AgentJSON, agent_json
from ..arguments import MAX_INT, Originate
from .documented import documented
from .envelopes import MessageSent, Success
from .request_io import Body, actor, parse_body, parse_query, settings

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
    webhook_headers: dict[str, str] | None = None
    enabled: bool = True


class UpdateAgentBody(_Settings):
    name: str | None = None
    webhook_url: str | None = None
    test_webhook_url: str | None = None
    webhook_headers: dict[str, str] | None = None
    enabled: bool | None = None
    test_mode: bool | None = None


class AgentMessageBody(Originate):
    conversation_id: str = Field(description="One of the agent's conversations (or the id your automation gave it).")
    role: str = "assistant"


class AgentGet(Body):
    detailed: bool = Field(False, description="Add settings, test mode and timestamps.")


class AgentList(AgentGet):
    limit: int = Field(500, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_INT)


class NewAgentJSON(AgentJSON):
    signing_secret: str  # verifies the webhooks it receives: shown here and after a rotation only


class AgentCreated(TypedDict):
    success: Literal[True]
    agent: NewAgentJSON


class AgentPageMeta(TypedDict):
    limit: int
    offset: int
    has_more: bool


class AgentPage(TypedDict):
    agents: list[AgentJSON]
    meta: AgentPageMeta


class AgentAnswer(TypedDict):
    agent: AgentJSON


class AgentChanged(TypedDict):
    success: Literal[True]
    agent: AgentJSON


class SecretRotated(TypedDict):
    success: Literal[True]
    signing_secret: str
    previous_secret_expires_at: str | None


class Endpoints(TypedDict):
    send_message: str
    create_conversation: str
    list_conversations: str
    originate: str
    typing: str


class ConnectionInfo(TypedDict):
    agent_id: str
    agent_name: str
    webhook_url: str | None
    protocol: str
    conversations: list[ConversationJSON]
    api_endpoints: Endpoints


class ConnectionInfoAnswer(TypedDict):
    connection_info: ConnectionInfo


def _config(body: _Settings) -> dict[str, Any]:
    """The settings the body names (``null`` removes one)."""
    return {k: getattr(body, k) for k in agents.CONFIG_KEYS if k in body.model_fields_set}


@bp.post("")
@documented("Create an agent (its signing secret is shown only here)", body=CreateAgentBody, status=201,
            scope="agents:write", errors=(402,))
async def create_agent() -> tuple[AgentCreated, int]:
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
        webhook_headers=body.webhook_headers,
        allow_private_webhooks=settings().allow_private_webhooks,
    )
    return {"success": True, "agent": NewAgentJSON(**agent_json(agent, detailed=True), signing_secret=secret)}, 201


@bp.get("")
@documented("List agents", query=AgentList, scope="agents:read",
            description="Webhook URLs are null for callers without agents:write.")
async def list_agents() -> AgentPage:
    args = parse_query(AgentList)
    detailed, limit, offset = args.detailed, args.limit, args.offset
    principal = await actor()
    rows, has_more = await agents.list_agents(principal, limit=limit, offset=offset)
    show = agents.may_see_urls(principal)
    return {
        "agents": [agent_json(a, detailed=detailed, show_urls=show) for a in rows],
        "meta": {"limit": limit, "offset": offset, "has_more": has_more},
    }


@bp.get("/<agent_id>")
@documented("Get an agent", query=AgentGet, scope="agents:read")
async def get_agent(agent_id: str) -> AgentAnswer:
    detailed = parse_query(AgentGet).detailed
    principal = await actor()
    agent = await agents.get_agent(principal, agent_id)
    return {"agent": agent_json(agent, detailed=detailed, show_urls=agents.may_see_urls(principal))}


@bp.patch("/<agent_id>")
@documented("Change an agent (settings given as null are removed)", body=UpdateAgentBody, scope="agents:write")
async def update_agent(agent_id: str) -> AgentChanged:
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
        webhook_headers=body.webhook_headers if "webhook_headers" in given else UNSET,
        allow_private_webhooks=settings().allow_private_webhooks,
    )
    return {"success": True, "agent": agent_json(agent, detailed=True)}


@bp.delete("/<agent_id>")
@documented("Delete an agent with its conversations", scope="agents:write")
async def delete_agent(agent_id: str) -> Success:
    await agents.delete_agent(await actor(), agent_id)
    return {"success": True}


@bp.post("/<agent_id>/rotate-secret")
@documented("Rotate the agent's webhook signing secret (the previous one signs for a while longer)",
            scope="agents:write", errors=(409,))
async def rotate_secret(agent_id: str) -> SecretRotated:
    agent, secret = await agents.rotate_secret(await actor(), agent_id)
    return {
        "success": True,
        "signing_secret": secret,
        "previous_secret_expires_at": agent_json(agent, detailed=True)["previous_secret_expires_at"],
    }


class WebhookTested(TypedDict):
    success: Literal[True]
    ok: bool  # the receiver answered 2xx
    status: int | None  # its HTTP status; null when it did not answer
    latency_ms: int | None
    delivery_id: str  # the test delivery, in the delivery log
    url: str
    error: NotRequired[str]
    response_excerpt: NotRequired[str]  # the start of a non-2xx answer


@bp.post("/<agent_id>/test")
@documented("Send a signed test message.created to the agent's webhook and report its answer",
            scope="agents:write", errors=(409,))
async def send_webhook_test(agent_id: str) -> WebhookTested:
    """A synthetic, signed ``message.created`` to the agent's webhook; what the receiver answered."""
    result = await webhook_check.send_test(await actor(), agent_id)
    out: WebhookTested = {
        "success": True,
        "ok": result.ok,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "delivery_id": result.delivery_id,
        "url": result.url,
    }
    if result.error is not None:
        out["error"] = result.error
    if result.response_excerpt is not None:
        out["response_excerpt"] = result.response_excerpt
    return out


@bp.post("/<agent_id>/messages")
@documented("Post the agent's message to one of its conversations", body=AgentMessageBody, status=201,
            scope="conversations:write", errors=(402, 409))
async def send_agent_message(agent_id: str) -> tuple[MessageSent, int]:
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
@documented("What an automation needs to talk to this agent: endpoints and recent conversations",
            scope="agents:read")
async def connection_info(agent_id: str) -> ConnectionInfoAnswer:
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
