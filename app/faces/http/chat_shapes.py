"""JSON shapes of agents and deliveries (messages and conversations: ``app.events.payloads``), as the contract shows them
(extra fields beyond the contract are additions, never renames)."""

from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict

from ...kernel.timefmt import iso
from ...models.chat import Agent, DeliveryAttempt, OutboxItem
from ...services import agent_config, agents

__all__ = ["AgentJSON", "DeliveryJSON", "AttemptJSON", "agent_json", "delivery_json", "attempt_json"]


class AgentJSON(TypedDict):
    id: str
    name: str
    status: str  # active | disabled
    protocol: str  # webhook | custom
    webhook_url: str | None
    enabled: bool
    # ?detailed=true (and every create or change answer) adds these:
    test_mode: NotRequired[bool]
    test_webhook_url: NotRequired[str | None]
    webhook_headers: NotRequired[dict[str, str]]
    config: NotRequired[dict[str, Any]]
    previous_secret_expires_at: NotRequired[str | None]
    created_at: NotRequired[str | None]
    updated_at: NotRequired[str | None]


class DeliveryJSON(TypedDict):
    id: str
    channel: str
    kind: str
    event: str
    status: str  # pending | delivering | succeeded | failed | cancelled
    target: str | None
    url: str | None
    agent_id: str | None
    conversation_id: str | None
    message_id: str | None
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str | None
    completed_at: str | None


class AttemptJSON(TypedDict):
    number: int
    outcome: str  # succeeded | retry | failed | gone
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: str | None


def agent_json(agent: Agent, *, detailed: bool = False, show_urls: bool = True) -> AgentJSON:
    """``show_urls=False`` nulls the webhook URLs (callers without agents:write)."""
    out: AgentJSON = {
        "id": agent.id,
        "name": agent.name,
        "status": "active" if agent.enabled else "disabled",
        "protocol": agent.protocol,
        "webhook_url": agent.webhook_url if show_urls else None,
        "enabled": agent.enabled,
    }
    if detailed:
        out.update(
            {
                "test_mode": agent.test_mode,
                "test_webhook_url": agent.test_webhook_url if show_urls else None,
                "webhook_headers": agents.webhook_headers(agent) if show_urls else {},
                "config": agent_config.public_config(agent.config or {}, show_urls=show_urls),
                "previous_secret_expires_at": iso(agent.previous_secret_expires_at),
                "created_at": iso(agent.created_at),
                "updated_at": iso(agent.updated_at),
            }
        )
    return out


def delivery_json(item: OutboxItem, *, show_url: bool = True) -> DeliveryJSON:
    """``show_url=False`` nulls the target (callers without agents:write, as for agents)."""
    target = item.target if show_url else None
    return {
        "id": item.id,
        "channel": item.channel,
        "kind": item.kind,
        "event": item.event,
        "status": item.status,
        "target": target,
        "url": target if item.channel == "webhook" else None,
        "agent_id": item.agent_id,
        "conversation_id": item.conversation_id,
        "message_id": item.message_id,
        "attempts": item.attempts,
        "last_status_code": item.last_status_code,
        "last_error": item.last_error,
        "next_attempt_at": iso(item.next_attempt_at) if item.status in ("pending", "delivering") else None,
        "created_at": iso(item.created_at),
        "completed_at": iso(item.completed_at),
    }


def attempt_json(attempt: DeliveryAttempt) -> AttemptJSON:
    return {
        "number": attempt.number,
        "outcome": attempt.outcome,
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "attempted_at": iso(attempt.attempted_at),
    }
