"""One typed builder per event: the only place an event's payload is made.

The socket event, the REST shape and the webhook body of the same object come from the
same builder, so they cannot drift. Keys of the webhook body are the contract's (camelCase)
and must not change; REST and socket shapes are snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, NotRequired, TypedDict

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
    "InteractionJSON",
    "interaction_json",
    "CallbackBody",
    "interaction_callback",
    "MessageDelta",
    "message_delta",
    "AgentError",
    "agent_error",
]


class InteractionJSON(TypedDict, total=False):
    status: str  # pending | responded | expired
    action_type: str
    expires_at: str | None
    response: dict[str, Any] | None
    responded_by: dict[str, Any] | None
    responded_at: str | None


class MessageJSON(TypedDict, total=False):
    """``message.created`` / ``message.updated`` on the socket, and a message in REST
    answers. ``kind``, ``elements`` and ``interaction`` are there for interactive messages."""

    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    user_id: str | None
    external_message_id: str | None
    created_at: str | None
    kind: str
    elements: list[dict[str, Any]]
    interaction: InteractionJSON
    status: str  # a custom agent's reply that did not complete: stopped | error
    error: str  # status error: why
    metadata: dict[str, Any]  # a custom agent's reply: model, usage, tool_calls
    attachments: list[dict[str, Any]]  # files sent with it: id, filename, content_type, size_bytes, download_url


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
    attachments: NotRequired[list[dict[str, Any]]]  # only when files were sent with it


@dataclass(frozen=True)
class MessageCreated:
    socket: MessageJSON
    webhook: MessageWebhook


MAX_SHOWN_CALLS = 50


def message_json(message: Any, interaction: Any = None) -> MessageJSON:
    """A stored message (model or row with the same attribute names); an interactive one
    with its ``Interaction``. The socket event and REST shape of every message."""
    out = MessageJSON(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        role=message.role,
        content=message.content,
        user_id=message.user_id,
        external_message_id=message.external_message_id,
        created_at=iso(message.created_at),
    )
    status = getattr(message, "status", "complete")
    meta = getattr(message, "meta", None) or {}
    if status and status != "complete":
        out["status"] = status
        if meta.get("error"):
            out["error"] = str(meta["error"])
    if meta.get("model"):  # a custom agent's reply: what made it, what it cost, the tools it used
        shown: dict[str, Any] = {key: meta[key] for key in ("model", "usage") if key in meta}
        if meta.get("tool_calls"):  # which tools, not their output (that stays with the agent)
            shown["tool_calls"] = [
                {key: call[key] for key in ("id", "name", "is_error", "approved") if key in call}
                for call in meta["tool_calls"][:MAX_SHOWN_CALLS]
            ]
        out["metadata"] = shown
    stored = getattr(message, "attachments", None)
    if stored:
        # with download URLs when the service signed them for this answer (``attachment_views``)
        out["attachments"] = getattr(message, "attachment_views", None) or [
            {"id": a["file_id"], "filename": a["filename"], "content_type": a["content_type"],
             "size_bytes": a["size_bytes"], "download_url": None}
            for a in stored
        ]
    if getattr(message, "kind", "text") == "interactive":
        out["kind"] = "interactive"
        out["elements"] = list(message.elements or [])
        if interaction is not None:
            out["interaction"] = interaction_json(interaction)
    return out


def message_created(
    message: Any, *, agent_id: str = "", user_email: str | None = None, interaction: Any = None
) -> MessageCreated:
    """Both renderings of one message, the webhook body made from the socket event's values.
    ``message`` has the ``Message`` model's attributes (``conversation_id`` and ``user_id`` as
    plain ids)."""
    socket = message_json(message, interaction)
    webhook = MessageWebhook(
        event="message.created",
        conversationId=socket["conversation_id"],
        messageId=socket["id"],
        agentId=agent_id,
        content=socket["content"],
        userId=socket["user_id"],
        userEmail=user_email,
        timestamp=socket["created_at"],
    )
    if "attachments" in socket:
        webhook["attachments"] = socket["attachments"]
    return MessageCreated(socket=socket, webhook=webhook)


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


def interaction_json(interaction: Any) -> InteractionJSON:
    """An ``Interaction`` as people see it (never its callback URL or id)."""
    out = InteractionJSON(
        status=interaction.status, action_type=interaction.action_type, expires_at=iso(interaction.expires_at)
    )
    if interaction.status == "responded":
        out["response"] = interaction.response
        out["responded_by"] = {"user_id": interaction.responded_by_id, "email": interaction.responded_by_email}
        out["responded_at"] = iso(interaction.responded_at)
    return out


class CallbackBody(TypedDict, total=False):
    """The contract's Callback Response, key for key; ``expired`` adds ``expired_at``."""

    callback_id: str
    conversation_id: str
    message_id: str
    response_type: str  # boolean | buttons | fields | expired
    approved: bool
    message: str | None
    selection: str
    data: dict[str, Any]
    responded_at: str | None
    responded_by: dict[str, Any]
    expired_at: str | None


def interaction_callback(interaction: Any) -> CallbackBody:
    """What is POSTed to the callback URL once the interaction is answered or expires."""
    body = CallbackBody(
        callback_id=interaction.callback_id,
        conversation_id=interaction.conversation_id,
        message_id=interaction.message_id,
    )
    if interaction.status == "expired":
        body["response_type"] = "expired"
        body["expired_at"] = iso(interaction.expires_at)
        return body
    body["response_type"] = interaction.action_type
    response = interaction.response or {}
    if interaction.action_type == "boolean":
        body["approved"] = bool(response.get("approved"))
        body["message"] = response.get("message")
    elif interaction.action_type == "buttons":
        body["selection"] = str(response.get("selection", ""))
    else:
        body["data"] = dict(response.get("data") or {})
    body["responded_at"] = iso(interaction.responded_at)
    body["responded_by"] = {"user_id": interaction.responded_by_id, "email": interaction.responded_by_email}
    return body


class MessageDelta(TypedDict):
    """A custom agent's reply as it streams: text to append to message ``message_id``, which
    arrives whole as ``message.created`` once done."""

    conversation_id: str
    message_id: str
    delta: str


def message_delta(conversation_id: str, message_id: str, delta: str) -> MessageDelta:
    return MessageDelta(conversation_id=conversation_id, message_id=message_id, delta=delta)


class AgentError(TypedDict):
    conversation_id: str
    agent_id: str
    message_id: str
    error: str


def agent_error(conversation_id: str, agent_id: str, message_id: str, error: str) -> AgentError:
    return AgentError(conversation_id=conversation_id, agent_id=agent_id, message_id=message_id, error=error)
