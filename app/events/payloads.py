"""One typed builder per event: the only place an event's payload is made.

The socket event, the REST shape and the webhook body of the same object come from the
same builder, so they cannot drift. Keys of the webhook body are the contract's (camelCase)
and must not change; REST and socket shapes are snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, TypedDict

from ..kernel.timefmt import iso

__all__ = [
    "MessageJSON",
    "MessageWebhook",
    "MessageCreated",
    "message_created",
    "message_json",
    "ConversationJSON",
    "conversation_json",
    "TypingEvent",
    "typing_event",
    "DeliveryFailed",
    "delivery_failed",
]


class MessageJSON(TypedDict):
    """``message.created`` on the socket, and a message in REST answers."""

    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    user_id: str | None
    external_message_id: str | None
    created_at: str | None


class MessageWebhook(TypedDict):
    """The contract's ``message.created`` webhook body, key for key."""

    event: str
    conversationId: str
    messageId: str
    agentId: str
    content: str
    userId: str | None
    userEmail: str | None
    timestamp: str | None


@dataclass(frozen=True)
class MessageCreated:
    socket: MessageJSON
    webhook: MessageWebhook


def message_json(message: Any) -> MessageJSON:
    """A stored message (model or row with the same attribute names)."""
    return message_created(message).socket


def message_created(message: Any, *, agent_id: str = "", user_email: str | None = None) -> MessageCreated:
    """Both renderings of one message. ``message`` has the ``Message`` model's attributes
    (``conversation_id`` and ``user_id`` as plain ids)."""
    created_at = iso(message.created_at)
    return MessageCreated(
        socket=MessageJSON(
            id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            role=message.role,
            content=message.content,
            user_id=message.user_id,
            external_message_id=message.external_message_id,
            created_at=created_at,
        ),
        webhook=MessageWebhook(
            event="message.created",
            conversationId=message.conversation_id,
            messageId=message.id,
            agentId=agent_id,
            content=message.content,
            userId=message.user_id,
            userEmail=user_email,
            timestamp=created_at,
        ),
    )


class ConversationJSON(TypedDict):
    """``conversation.created`` on the socket, and a conversation in REST answers."""

    id: str
    user_id: str
    agent_id: str
    title: str
    status: str
    last_seq: int
    created_at: str | None
    updated_at: str | None


def conversation_json(conv: Any) -> ConversationJSON:
    return ConversationJSON(
        id=conv.id,
        user_id=conv.user_id,
        agent_id=conv.agent_id,
        title=conv.title,
        status=conv.status,
        last_seq=conv.last_seq,
        created_at=iso(conv.created_at),
        updated_at=iso(conv.updated_at),
    )


class TypingEvent(TypedDict):
    conversation_id: str
    agent_id: str
    typing: bool
    label: str | None
    show_dots: bool


def typing_event(
    conversation_id: str, agent_id: str, *, typing: bool, label: str | None = None, show_dots: bool = True
) -> TypingEvent:
    return TypingEvent(
        conversation_id=conversation_id, agent_id=agent_id, typing=typing, label=label, show_dots=show_dots
    )


class DeliveryFailed(TypedDict):
    delivery_id: str
    channel: str
    event: str
    conversation_id: str | None
    agent_id: str | None
    message_id: str | None
    attempts: int
    status_code: int | None
    error: str | None
    failed_at: str | None


def delivery_failed(
    item: Mapping[str, Any], *, status_code: int | None, error: str | None, failed_at: datetime
) -> DeliveryFailed:
    """``item`` is a claimed outbox row (column -> value)."""
    return DeliveryFailed(
        delivery_id=str(item["id"]),
        channel=str(item.get("channel") or "webhook"),
        event=str(item["event"]),
        conversation_id=item.get("conversation_id"),
        agent_id=item.get("agent_id"),
        message_id=item.get("message_id"),
        attempts=int(item.get("attempts") or 0),
        status_code=status_code,
        error=error,
        failed_at=iso(failed_at),
    )
