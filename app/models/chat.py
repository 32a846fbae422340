"""Agents, conversations, messages, and the outbox of everything that leaves the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from .core import Organization, User

__all__ = ["Agent", "AgentUsage", "Credential", "Conversation", "Message", "Interaction", "OutboxItem", "OutboxHold", "DeliveryAttempt", "PROTOCOLS", "ROLES"]

PROTOCOLS = ("webhook", "custom")
ROLES = ("user", "assistant", "system")


class Agent(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="agents", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    protocol = fields.CharField(max_length=16, default="webhook")
    webhook_url = fields.CharField(max_length=2048, null=True)
    test_webhook_url = fields.CharField(max_length=2048, null=True)
    test_mode = fields.BooleanField(default=False)
    enabled = fields.BooleanField(default=True)
    # Static headers sent with every webhook delivery (a receiver's own shared secret, say):
    # name -> value encrypted for this agent, shown masked; null when none (agents made before).
    webhook_headers: fields.Field[dict[str, str] | None] = fields.JSONField(null=True)
    # Custom-agent settings (provider, model, system prompt ...), used by the agent runner.
    config: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    # HMAC signing secrets. After a rotation the previous one keeps signing until it expires.
    signing_secret = fields.CharField(max_length=128)
    previous_signing_secret = fields.CharField(max_length=128, null=True)
    previous_secret_expires_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "agents"
        indexes = (("organization_id", "created_at"),)


class Credential(Model):
    """An LLM provider's API key for custom agents. The value is encrypted (bound to the
    credential's id) and never shown again; ``hint`` is its last characters."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="credentials", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    provider = fields.CharField(max_length=32)
    value = fields.TextField()
    hint = fields.CharField(max_length=16)
    # The only server the value is sent to besides the provider's own: an agent may name a
    # base_url only with a credential made for it, so no key goes where its owner did not say.
    base_url = fields.CharField(max_length=2048, null=True)
    created_by_id = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "credentials"
        indexes = (("organization_id", "created_at"),)


class AgentUsage(Model):
    """The tokens one custom-agent reply cost, for usage reports."""

    id = fields.BigIntField(primary_key=True)
    organization_id = fields.CharField(max_length=32)
    agent_id = fields.CharField(max_length=32)
    conversation_id = fields.CharField(max_length=32)
    message_id = fields.CharField(max_length=32)
    provider = fields.CharField(max_length=32)
    model = fields.CharField(max_length=200)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "agent_usage"
        indexes = (("organization_id", "created_at"),)


class Conversation(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="conversations", on_delete=fields.CASCADE
    )
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "chat.Agent", related_name="conversations", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="conversations", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=500, default="")
    status = fields.CharField(max_length=16, default="active")
    # The id an automation gave this conversation before we issued ours (its messages name
    # it again); unique per agent.
    client_id = fields.CharField(max_length=255, null=True)
    # The seq of the newest message: bumped in the transaction that stores a message.
    last_seq = fields.BigIntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "conversations"
        indexes = (("agent_id", "created_at"), ("user_id", "created_at"))
        unique_together = (("agent_id", "client_id"),)


class Message(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "chat.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    seq = fields.BigIntField()
    role = fields.CharField(max_length=16)
    content = fields.TextField()
    # The person who wrote a user message (the conversation's owner for API-key sends).
    user: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "core.User", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    external_message_id = fields.CharField(max_length=255, null=True)
    kind = fields.CharField(max_length=16, default="text", db_default="text")  # text | interactive
    # A custom agent's reply: complete, stopped (by a person, partial text kept) or error
    # (the readable reason in ``meta.error``).
    status = fields.CharField(max_length=16, default="complete", db_default="complete")
    meta: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)  # usage, tool calls, error
    # An interactive message's elements (header, text, divider and one action element).
    elements: fields.Field[list[dict[str, Any]] | None] = fields.JSONField(null=True)
    # Confirmed files sent with the message: [{"file_id", "filename", "content_type", "size_bytes"}]
    attachments: fields.Field[list[dict[str, Any]] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "messages"
        unique_together = (("conversation", "seq"), ("conversation", "external_message_id"))


class Interaction(Model):
    """The state of an interactive message: who may be called back, and the one answer.

    ``status`` goes pending -> responded | expired exactly once (a conditional update), in
    the transaction that also queues the callback.
    """

    message_id = fields.CharField(max_length=32, primary_key=True)
    organization_id = fields.CharField(max_length=32)
    conversation_id = fields.CharField(max_length=32)
    action_type = fields.CharField(max_length=16)  # boolean | buttons | fields
    callback_url = fields.CharField(max_length=2048)
    callback_id = fields.CharField(max_length=255)
    status = fields.CharField(max_length=16, default="pending")
    expires_at = fields.DatetimeField(null=True)
    response: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    responded_by_id = fields.CharField(max_length=32, null=True)
    responded_by_email = fields.CharField(max_length=320, null=True)
    responded_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "interactions"
        indexes = (("status", "expires_at"),)


class OutboxItem(Model):
    """One delivery to somewhere outside: written in the transaction that caused it.

    Generic on purpose: ``channel`` names the adapter in ``channels/`` that sends it
    (webhook, email ...), ``target`` is where it goes as that channel reads it (a URL, an
    address). ``secret_ref`` names who signs and may re-point it (e.g. ``agent:agt_...``),
    resolved at send time so a rotated secret applies to queued deliveries too; while a row of
    ``outbox_holds`` carries the item's ``hold_key`` it is held. Items that share an
    ``ordering_key`` go out one at a time in ``ordering_seq`` order.
    """

    id = fields.CharField(max_length=32, primary_key=True)
    organization_id = fields.CharField(max_length=32, db_index=True)
    channel = fields.CharField(max_length=16, default="webhook", db_default="webhook")
    kind = fields.CharField(max_length=32)  # what it is: agent_webhook | invitation | password_reset ...
    event = fields.CharField(max_length=64)
    target = fields.CharField(max_length=2048)
    body = fields.TextField()  # the exact bytes sent on every attempt
    headers: fields.Field[dict[str, str]] = fields.JSONField(default=dict)
    secret_ref = fields.CharField(max_length=80, null=True)
    hold_key = fields.CharField(max_length=80, null=True)
    ordering_key = fields.CharField(max_length=80)
    ordering_seq = fields.BigIntField(default=0)
    # pending -> delivering -> succeeded | failed | cancelled. A "delivering" row whose
    # next_attempt_at has passed belongs to a worker that died: it is due again.
    status = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    window_start = fields.DatetimeField()  # retries stop max_age after this
    last_status_code = fields.IntField(null=True)
    last_error = fields.TextField(null=True)
    agent_id = fields.CharField(max_length=32, null=True)
    conversation_id = fields.CharField(max_length=32, null=True)
    message_id = fields.CharField(max_length=32, null=True)
    # Deliveries that together make one thing (a notification's, one per device) share it.
    group_id = fields.CharField(max_length=32, null=True, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    completed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (
            ("status", "next_attempt_at"),
            ("status", "ordering_key", "ordering_seq"),
            ("organization_id", "created_at"),
        )


class OutboxHold(Model):
    """While a row names a ``hold_key``, the outbox items carrying it wait (not claimed, no
    attempts spent). The service that owns the key adds and removes it."""

    key = fields.CharField(max_length=80, primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbox_holds"


class DeliveryAttempt(Model):
    id = fields.BigIntField(primary_key=True)
    delivery: fields.ForeignKeyRelation[OutboxItem] = fields.ForeignKeyField(
        "chat.OutboxItem", related_name="attempt_log", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    outcome = fields.CharField(max_length=16)  # succeeded | retry | failed | gone
    status_code = fields.IntField(null=True)
    latency_ms = fields.IntField()
    error = fields.TextField(null=True)
    attempted_at = fields.DatetimeField()

    class Meta:
        table = "delivery_attempts"
        indexes = (("delivery_id", "number"),)
