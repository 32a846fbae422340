"""Messages: user messages, agent messages (originate), history and sync.

Every message gets the next per-conversation ``seq`` in the transaction that stores it: the
conversation's ``last_seq`` is bumped with ``UPDATE ... RETURNING`` (a row lock on
PostgreSQL; SQLite serializes writers), so seqs are gap-free and strictly increasing, and a
rolled-back insert gives its number back. ``(conversation, external_message_id)`` is unique,
so concurrent duplicate originates store one message; the others get 409
``duplicate_message`` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from .. import outbox, realtime
from ..auth import Principal, require_scope
from ..errors import Conflict, Forbidden, ValidationFailed
from ..ids import new_id
from ..models.chat import Agent, Conversation, Message
from ..models.core import User
from ..timefmt import iso, utcnow
from ..transactions import atomic
from . import typing as typing_service
from .conversations import access_conversation, ensure_enabled

__all__ = [
    "send_user_message",
    "originate",
    "list_messages",
    "message_payload",
    "MessagePage",
    "MAX_CONTENT",
    "SYNC_LIMIT",
]

MAX_CONTENT = 32_768
MAX_PAGE = 200
SYNC_LIMIT = 500


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    has_more: bool
    last_seq: int


def message_payload(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,  # type: ignore[attr-defined]
        "seq": m.seq,
        "role": m.role,
        "content": m.content,
        "user_id": m.user_id,  # type: ignore[attr-defined]
        "external_message_id": m.external_message_id,
        "created_at": iso(m.created_at),
    }


def _check_content(content: str) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ValidationFailed(details={"content": ["must not be empty"]})
    if len(content) > MAX_CONTENT:
        raise ValidationFailed(details={"content": [f"must be at most {MAX_CONTENT} characters"]})
    return content


_BUMP = {
    "sqlite": "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq",
    "postgres": "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1 WHERE id = $2 RETURNING last_seq",
}


async def _store(
    conv: Conversation,
    *,
    role: str,
    content: str,
    user: User | None,
    external_message_id: str | None = None,
) -> Message:
    """Write the message (and, for a webhook agent, its outbox row) in one transaction."""
    agent: Agent = conv.agent
    now = utcnow()
    async with atomic() as conn:
        rows = await conn.execute_query_dict(_BUMP[conn.capabilities.dialect], [now, conv.id])
        seq = int(rows[0]["last_seq"])
        message = await Message.create(
            id=new_id("message"),
            conversation_id=conv.id,
            seq=seq,
            role=role,
            content=content,
            user_id=user.id if user is not None else None,
            external_message_id=external_message_id,
            created_at=now,
        )
        if role == "user" and agent.protocol == "webhook":
            url = agent.test_webhook_url if agent.test_mode and agent.test_webhook_url else agent.webhook_url
            if url:
                await outbox.enqueue(
                    organization_id=conv.organization_id,  # type: ignore[attr-defined]
                    kind="agent_webhook",
                    event="message.created",
                    url=url,
                    payload={
                        "event": "message.created",
                        "conversationId": conv.id,
                        "messageId": message.id,
                        "agentId": agent.id,
                        "content": content,
                        "userId": user.id if user is not None else None,
                        "userEmail": user.email if user is not None else None,
                        "timestamp": iso(now),
                    },
                    ordering_key=conv.id,
                    ordering_seq=seq,
                    secret_ref=f"agent:{agent.id}",
                    agent_id=agent.id,
                    conversation_id=conv.id,
                    message_id=message.id,
                )
        await realtime.emit_on_commit(
            "message.created",
            realtime.conversation_rooms(conv.id, conv.user_id),  # type: ignore[attr-defined]
            message_payload(message),
        )
    conv.last_seq = seq
    return message


async def send_user_message(principal: Principal, conversation_id: str, content: str) -> Message:
    """A person's message: with an API key (on the owner's behalf) or the owner's session."""
    require_scope(principal, "conversations:write")
    content = _check_content(content)
    conv = await access_conversation(principal, conversation_id)
    if principal.kind == "session" and (principal.user is None or principal.user.id != conv.user_id):  # type: ignore[attr-defined]
        raise Forbidden("Only the conversation's owner can send messages in it.")
    ensure_enabled(conv.agent)
    sender = principal.user if principal.kind == "session" else conv.user
    return await _store(conv, role="user", content=content, user=sender)


async def originate(
    principal: Principal,
    conversation_id: str,
    content: str,
    *,
    role: str = "assistant",
    external_message_id: str | None = None,
) -> Message:
    """An agent's message, deduplicated on ``external_message_id``."""
    require_scope(principal, "conversations:write")
    if principal.kind != "api_key":
        raise Forbidden("Agent messages are sent with an API key.")
    if role != "assistant":
        raise ValidationFailed(details={"role": ['must be "assistant"']})
    content = _check_content(content)
    if external_message_id is not None:
        external_message_id = external_message_id.strip() or None
        if external_message_id is not None and len(external_message_id) > 255:
            raise ValidationFailed(details={"external_message_id": ["must be at most 255 characters"]})
    conv = await access_conversation(principal, conversation_id)
    ensure_enabled(conv.agent)
    try:
        message = await _store(conv, role="assistant", content=content, user=None, external_message_id=external_message_id)
    except IntegrityError:
        if external_message_id is None:
            raise
        existing = await Message.filter(conversation_id=conv.id, external_message_id=external_message_id).first()
        if existing is None:
            raise
        raise Conflict(
            "Message with this external_message_id already exists",
            code="duplicate_message",
            details={"message_id": existing.id, "external_message_id": external_message_id},
        ) from None
    await typing_service.clear(conv.id, conv.agent.id)
    return message


async def list_messages(
    principal: Principal,
    conversation_id: str,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
) -> MessagePage:
    """Oldest to newest. ``before_seq`` alone gives the newest page before it."""
    require_scope(principal, "conversations:read")
    conv = await access_conversation(principal, conversation_id)
    limit = max(1, min(limit, SYNC_LIMIT))
    query = Message.filter(conversation_id=conv.id)
    if after_seq is not None:
        query = query.filter(seq__gt=after_seq)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    if before_seq is not None and after_seq is None:
        rows = list(await query.order_by("-seq").limit(limit + 1))
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    else:
        rows = list(await query.order_by("seq").limit(limit + 1))
        has_more = len(rows) > limit
        rows = rows[:limit]
    return MessagePage(messages=rows, has_more=has_more, last_seq=conv.last_seq)
