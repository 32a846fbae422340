"""Testing an agent's webhook: one synthetic, signed ``message.created`` and what the
receiver answered.

The body is a real ``message.created`` body (the same builder) about a made-up conversation
and message, marked ``"test": true``; the request also carries ``X-Switchboard-Test: true``.
It leaves through the outbox like every delivery: signed with the agent's current secrets,
sent to its current URL with its static headers, and kept in the delivery log. It is ordered
with nothing else, so the agent's real messages keep their order, held by nothing (a disabled
agent's webhook can be tried before it is enabled again), and attempted once: a failed test
is reported, not retried.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import outbox
from ..events.payloads import message_created
from ..kernel.auth import Principal, require_scope
from ..kernel.errors import Conflict
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..models.chat import DeliveryAttempt, Message, OutboxItem
from .agents import delivery_url, find_agent, outbox_key, reply_url

__all__ = ["WebhookTest", "send_test", "TEST_HEADER", "WAIT_SECONDS"]

TEST_HEADER = "X-Switchboard-Test"
WAIT_SECONDS = 15.0  # for the attempt's result (the webhook timeout is a few seconds)
TEST_CONTENT = "This is a test message from Switchboard."


@dataclass(frozen=True)
class WebhookTest:
    delivery_id: str
    url: str
    ok: bool
    status: int | None  # the receiver's HTTP status; None when it did not answer
    latency_ms: int | None
    error: str | None = None
    response_excerpt: str | None = None  # the start of a non-2xx answer's body


async def send_test(
    principal: Principal, agent_id: str, *, wait: float = WAIT_SECONDS
) -> WebhookTest:
    require_scope(principal, "agents:write")
    agent = await find_agent(principal, agent_id)
    url = delivery_url(agent)
    if agent.protocol != "webhook" or not url:
        raise Conflict(
            "Only a webhook agent's webhook can be tested; the gateway itself answers for a custom agent.",
            code="no_webhook",
            details={"agent_id": agent.id, "protocol": agent.protocol},
        )
    user = principal.user
    now = utcnow()
    message = Message(
        id=new_id("message"), conversation_id=new_id("conversation"), seq=0, role="user", content=TEST_CONTENT,
        user_id=user.id if user is not None else None, created_at=now,
    )
    event = message_created(
        message, agent_id=agent.id, user_email=user.email if user is not None else None, organization_id=principal.org_id,
        reply_url=reply_url(agent.id), test=True,
    )
    delivery_id = await outbox.enqueue(
        organization_id=principal.org_id,
        channel="webhook",
        kind="agent_webhook_test",
        event="message.created",
        target=url,
        payload=event.webhook,
        secret_ref=outbox_key(agent.id),
        headers={TEST_HEADER: "true"},
        agent_id=agent.id,
        retry=False,
        now=now,
    )
    await outbox.wait_attempted([delivery_id], wait)
    return await _result(delivery_id, wait)


async def _result(delivery_id: str, waited: float) -> WebhookTest:
    item = await OutboxItem.get(id=delivery_id)
    attempt = await DeliveryAttempt.filter(delivery_id=delivery_id).order_by("number").first()
    if attempt is None:
        error = item.last_error if item.status == "cancelled" else (
            f"not attempted within {waited:g} s; it is sent once when the outbox gets to it (see the delivery log)"
        )
        return WebhookTest(delivery_id, item.target, ok=False, status=None, latency_ms=None, error=error)
    excerpt = None
    prefix = f"HTTP {attempt.status_code}: "
    if attempt.status_code is not None and attempt.error and attempt.error.startswith(prefix):
        excerpt = attempt.error[len(prefix):]
    return WebhookTest(
        delivery_id,
        item.target,
        ok=attempt.outcome == "succeeded",
        status=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        response_excerpt=excerpt,
    )
