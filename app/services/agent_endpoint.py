"""An agent's own endpoints, as automation platforms' nodes call them (n8n's Lerty node).

``reply`` is where a webhook body's ``response_webhook`` points: the agent's answer to a
conversation, stored like ``originate``. ``post`` takes the node's message objects addressed
by agent: ``agent_response`` (the agent's message) or ``user_message`` (a person's message,
posted by the automation), in a conversation named by our id or by one the automation made
up (opened for it on first use and remembered).
"""

from __future__ import annotations

from typing import Any

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import Forbidden, NotFound, ValidationFailed
from ..models.chat import Message
from . import conversations, messages, usage
from .agents import find_agent

__all__ = ["reply", "post", "MESSAGE_TYPES"]

MESSAGE_TYPES = ("agent_response", "user_message")
MAX_FILE_URL = 2048


def _check_caller(principal: Principal) -> None:
    require_scope(principal, "conversations:write")
    if principal.kind != "api_key":
        raise Forbidden("Agent endpoints are called with an API key.")


async def reply(
    principal: Principal,
    agent_id: str,
    *,
    conversation_id: str,
    content: str,
    message_id: str | None = None,
    organization_id: str | None = None,
    link_base: str | None = None,
) -> Message:
    """The agent's answer, deduplicated on ``message_id``. ``organization_id`` (may be
    empty) must be the key's own when given."""
    _check_caller(principal)
    if organization_id and organization_id != principal.org_id:
        raise NotFound("Conversation not found.")
    return await messages.originate(
        principal, conversation_id, content, external_message_id=message_id or None, agent_id=agent_id, link_base=link_base
    )


async def post(
    principal: Principal,
    agent_id: str,
    *,
    kind: str,
    conversation: str,
    content: str,
    message_id: str | None = None,
    user_id: str | None = None,
    named_agent: str | None = None,
    file: dict[str, str] | None = None,
    metadata: dict[str, Any] | None = None,
    link_base: str | None = None,
) -> Message:
    """Store one of the node's message objects (``kind``: one of ``MESSAGE_TYPES``),
    deduplicated on ``message_id``. ``file``: a link the automation sent ({url, name,
    type}), kept with the message (the gateway does not fetch it)."""
    _check_caller(principal)
    problems: dict[str, list[str]] = {}
    if kind not in MESSAGE_TYPES:
        problems["type"] = [f"must be one of {', '.join(MESSAGE_TYPES)}"]
    if named_agent and named_agent != agent_id:
        problems["agentId"] = ["must be the agent of this endpoint"]
    if file is not None and not (file["url"].startswith(("https://", "http://")) and len(file["url"]) <= MAX_FILE_URL):
        problems["fileUrl"] = [f"must be an http(s) URL of at most {MAX_FILE_URL} characters"]
    if problems:
        raise ValidationFailed(details=problems)
    if not content.strip() and file is not None:
        content = file["url"]  # a file alone: its link is the message
    # Everything that can refuse the message is checked before a conversation is opened for it.
    messages.check_content(content)
    message_id = messages.check_external_id(message_id)
    conversations.ensure_enabled(await find_agent(principal, agent_id))
    await usage.check_messages_per_day(principal.organization)
    user_id = user_id or None
    conv_id = await conversations.open_for_client(principal, agent_id, conversation, user_id=user_id)
    client = {k: v for k, v in (("file", file), ("metadata", metadata)) if v}
    meta = {"client": client} if client else None
    if kind == "agent_response":
        return await messages.originate(
            principal, conv_id, content, external_message_id=message_id or None, agent_id=agent_id, link_base=link_base, meta=meta
        )
    conv = await conversations.access_conversation(principal, conv_id)
    if user_id is not None and user_id != conv.user_id:  # type: ignore[attr-defined]
        raise ValidationFailed(details={"userId": ["is not the user of this conversation"]})
    return await messages.send_user_message(
        principal, conv_id, content, external_message_id=message_id or None, origin="automation", meta=meta,
        link_base=link_base,
    )
