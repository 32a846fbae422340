"""One builder per event: the socket event, the REST shape and the webhook body of a
message come from the same function, and the webhook body keeps the contract's keys."""

from __future__ import annotations

from datetime import datetime, timezone

from app.events.payloads import message_created, message_json
from types import SimpleNamespace
from typing import Any

# The contract's message.created webhook payload, key for key (lerty-api: Webhook Payload).
CONTRACT_WEBHOOK_KEYS = {"event", "conversationId", "messageId", "agentId", "content", "userId", "userEmail", "timestamp"}


def _message(**overrides: object) -> Any:
    """A stored message as the builders read it (the model's attribute names)."""
    row = {
        "id": "msg_1",
        "conversation_id": "conv_1",
        "seq": 7,
        "role": "user",
        "content": "Hello, I need help",
        "user_id": "usr_1",
        "external_message_id": None,
        "created_at": datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc),
        **overrides,
    }
    return SimpleNamespace(**row)


def test_webhook_body_keeps_the_contract_keys_and_adds_the_automation_keys() -> None:
    body = message_created(
        _message(), agent_id="agt_1", user_email="user@example.com", organization_id="org_1",
        reply_url="https://gw.example/webhooks/agents/agt_1/reply",
    ).webhook
    assert {k: body[k] for k in CONTRACT_WEBHOOK_KEYS} == {
        "event": "message.created",
        "conversationId": "conv_1",
        "messageId": "msg_1",
        "agentId": "agt_1",
        "content": "Hello, I need help",
        "userId": "usr_1",
        "userEmail": "user@example.com",
        "timestamp": "2024-01-15T10:30:00Z",
    }
    # The names n8n's node reads, with where to answer.
    assert {k: v for k, v in body.items() if k not in CONTRACT_WEBHOOK_KEYS} == {
        "type": "user_message",
        "origin": "person",
        "conversation_id": "conv_1",
        "message_id": "msg_1",
        "agent_id": "agt_1",
        "user_id": "usr_1",
        "organization_id": "org_1",
        "response_webhook": "https://gw.example/webhooks/agents/agt_1/reply",
    }


def test_socket_rest_and_webhook_renderings_agree() -> None:
    message = _message()
    event = message_created(message, agent_id="agt_1", user_email="user@example.com")
    socket, hook = message_json(message), event.webhook
    assert (socket["id"], socket["conversation_id"], socket["content"], socket["user_id"], socket["created_at"]) == (
        hook["messageId"], hook["conversationId"], hook["content"], hook["userId"], hook["timestamp"],
    )
    assert set(socket) == {"id", "conversation_id", "seq", "role", "content", "user_id", "external_message_id", "created_at"}
