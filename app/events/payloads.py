"""One typed builder per event: the only place an event's payload is made.

The socket event, the REST shape and the webhook body of the same object come from the
same builder, so they cannot drift. Keys of the webhook body are the contract's (camelCase)
and must not change; REST and socket shapes are snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Mapping

# pydantic reads these (the OpenAPI document's schemas) only from typing_extensions on 3.11
from typing_extensions import NotRequired, TypedDict

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
    "SubscriptionEvent",
    "subscription_event",
    "PushFailed",
    "push_failed",
    "Ping",
    "ping",
]


class InteractionJSON(TypedDict):
    status: str  # pending | responded | expired
    action_type: str
    expires_at: str | None
    response: NotRequired[dict[str, Any] | None]
    responded_by: NotRequired[dict[str, Any] | None]
    responded_at: NotRequired[str | None]


class MessageJSON(TypedDict):
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
    kind: NotRequired[str]
    elements: NotRequired[list[dict[str, Any]]]
    interaction: NotRequired[InteractionJSON]
    status: NotRequired[str]  # a custom agent's reply that did not complete: stopped | error
    error: NotRequired[str]  # status error: why
    metadata: NotRequired[dict[str, Any]]  # a custom agent's reply: model, usage, tool_calls
    # files sent with it: id, filename, content_type, size_bytes, download_url
    attachments: NotRequired[list[dict[str, Any]]]


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
    # The same facts under the names automation platforms' nodes read (n8n's), and where to
    # answer: the agent's reply endpoint on this gateway.
    type: Literal["user_message"]
    origin: Literal["person", "automation"]  # automation: sent through the agent's message endpoint
    conversation_id: str
    message_id: str
    agent_id: str
    user_id: str | None
    organization_id: str
    response_webhook: str | None
    test: NotRequired[bool]  # only in a test of the agent's webhook: a made-up message


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
    if meta.get("client"):  # what an automation sent along through the agent's message endpoint
        out["metadata"] = dict(meta["client"])
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
    message: Any,
    *,
    agent_id: str = "",
    user_email: str | None = None,
    interaction: Any = None,
    organization_id: str = "",
    reply_url: str | None = None,
    origin: Literal["person", "automation"] = "person",
    test: bool = False,
) -> MessageCreated:
    """Both renderings of one message, the webhook body made from the socket event's values.
    ``message`` has the ``Message`` model's attributes (``conversation_id`` and ``user_id`` as
    plain ids). ``test``: a made-up message testing the agent's webhook, marked as such."""
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
        type="user_message",
        origin=origin,
        conversation_id=socket["conversation_id"],
        message_id=socket["id"],
        agent_id=agent_id,
        user_id=socket["user_id"],
        organization_id=organization_id,
        response_webhook=reply_url,
    )
    if "attachments" in socket:
        webhook["attachments"] = socket["attachments"]
    if test:
        webhook["test"] = True
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


class SubscriptionEvent(TypedDict):
    """The body of every organization webhook (event subscription) delivery. ``id`` names
    the occurrence: the same for every subscription it goes to and on every retry or replay.
    ``data`` is the object as the REST API and the socket event show it."""

    event: str
    id: str
    created_at: str | None
    organization_id: str
    data: Mapping[str, Any]


def subscription_event(
    event: str, *, event_id: str, organization_id: str, created_at: datetime, data: Mapping[str, Any]
) -> SubscriptionEvent:
    return SubscriptionEvent(
        event=event, id=event_id, created_at=iso(created_at), organization_id=organization_id, data=data
    )


class PushFailed(TypedDict):
    """``push.failed``: one device's push failed for good, shaped as a device of the
    notification in REST (``status`` token_removed when the push service said the device is
    gone, else failed)."""

    notification_id: str | None
    kind: str  # alert | liveactivity | approval
    message_id: str | None  # an approval's interactive message
    delivery_id: str
    channel: str  # apns | webpush
    device_id: NotRequired[str]
    live_activity_token_id: NotRequired[str]
    status: str
    attempts: int
    reason: str | None
    status_code: int | None
    updated_at: str | None


def push_failed(
    item: Mapping[str, Any], *, gone: bool, status_code: int | None, error: str | None, failed_at: datetime
) -> PushFailed:
    """``item`` is a claimed outbox row of a push (its ``secret_ref`` names the device)."""
    ref_kind, _, ref = str(item.get("secret_ref") or "").partition(":")
    out = PushFailed(
        notification_id=item.get("group_id"),
        kind=str(item["event"]).partition(".")[2],
        message_id=item.get("message_id"),
        delivery_id=str(item["id"]),
        channel=str(item["channel"]),
        status="token_removed" if gone else "failed",
        attempts=int(item.get("attempts") or 0),
        reason=error,
        status_code=status_code,
        updated_at=iso(failed_at),
    )
    if ref_kind == "latoken":
        out["live_activity_token_id"] = ref
    elif ref:
        out["device_id"] = ref
    return out


class Ping(TypedDict):
    subscription_id: str
    message: str


def ping(subscription_id: str) -> Ping:
    """What a subscription's test delivery carries (event ``ping``)."""
    return Ping(subscription_id=subscription_id, message="This is a test event from Switchboard.")
