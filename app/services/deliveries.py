"""The delivery log: list and inspect outbox items with their attempts; retry one by hand.
A delivery of a conversation that fails for good is announced to it (``delivery.failed``)."""

from __future__ import annotations

from typing import Any

from channels.base import DeliveryResult

from .. import outbox
from ..events import bus
from ..events.payloads import delivery_failed
from ..kernel import crypto
from ..kernel.auth import Principal, require_manager, require_scope
from ..kernel.errors import Conflict, NotFound, ValidationFailed
from ..kernel.pagination import newest_first, next_page
from ..kernel.timefmt import utcnow
from ..models.chat import Conversation, DeliveryAttempt, OutboxItem

__all__ = [
    "list_deliveries",
    "get_delivery",
    "retry_delivery",
    "cancel_delivery",
    "may_read_body",
    "STATUSES",
    "ATTEMPT_LOG_LIMIT",
]

ATTEMPT_LOG_LIMIT = 100
STATUSES = ("pending", "delivering", "succeeded", "failed", "cancelled")


# Channels whose deliveries are another domain's business: (scope to read, scope to retry or
# cancel). Invitations are the members'; pushes are for those who send them.
_CHANNEL_SCOPES = {
    "email": ("members:read", "members:write"),
    "apns": ("push:write", "push:write"),
    "webpush": ("push:write", "push:write"),
}
# Kinds of items that are another domain's business in the same way: an organization's event
# subscriptions' deliveries are for those who manage subscriptions.
_KIND_SCOPES = {
    "event_subscription": ("webhooks:read", "webhooks:write"),
}


def _check_reader(principal: Principal, scope: str) -> None:
    require_manager(principal, scope)  # payloads carry other people's messages


async def list_deliveries(
    principal: Principal,
    *,
    status: str | None = None,
    agent_id: str | None = None,
    kind: str | None = None,
    secret_ref: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[OutboxItem], str | None]:
    """Newest first, keyset-paginated on (created_at, id). ``kind`` and ``secret_ref`` narrow
    it to one sender's deliveries (an event subscription's)."""
    _check_reader(principal, _KIND_SCOPES[kind][0] if kind in _KIND_SCOPES else "agents:read")
    query = OutboxItem.filter(organization_id=principal.org_id)
    if kind is not None:
        query = query.filter(kind=kind)
    if secret_ref is not None:
        query = query.filter(secret_ref=secret_ref)
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed(details={"status": [f"must be one of {', '.join(STATUSES)}"]})
        query = query.filter(status=status)
    if agent_id is not None:
        query = query.filter(agent_id=agent_id)
    hidden = [channel for channel, (read, _) in _CHANNEL_SCOPES.items() if read not in principal.scopes]
    if hidden:
        query = query.exclude(channel__in=hidden)
    hidden_kinds = [k for k, (read, _) in _KIND_SCOPES.items() if read not in principal.scopes]
    if hidden_kinds:
        query = query.exclude(kind__in=hidden_kinds)
    return next_page(await newest_first(query, cursor, limit), limit)


def may_read_body(principal: Principal, item: OutboxItem) -> bool:
    """A message's text is for those who may read conversations (an event subscription's
    body for those who manage subscriptions); a sealed body (it carries a one-time token) is
    for nobody."""
    read = _KIND_SCOPES[item.kind][0] if item.kind in _KIND_SCOPES else "conversations:read"
    return read in principal.scopes and not crypto.is_encrypted(item.body)


async def _find(principal: Principal, delivery_id: str, *, write: bool = False) -> OutboxItem:
    item = await OutboxItem.get_or_none(id=delivery_id, organization_id=principal.org_id)
    if item is None:
        raise NotFound("Delivery not found.")
    if item.kind in _KIND_SCOPES:
        read, change = _KIND_SCOPES[item.kind]
        _check_reader(principal, change if write else read)
        return item
    _check_reader(principal, "agents:write" if write else "agents:read")
    if item.channel in _CHANNEL_SCOPES:
        read, change = _CHANNEL_SCOPES[item.channel]
        require_scope(principal, change if write else read)
    return item


async def get_delivery(principal: Principal, delivery_id: str) -> tuple[OutboxItem, list[DeliveryAttempt], bool]:
    """The item, its newest ``ATTEMPT_LOG_LIMIT`` attempts (oldest first) and whether older
    ones were left out (a delivery retried by hand many times can have any number)."""
    item = await _find(principal, delivery_id)
    newest = list(await DeliveryAttempt.filter(delivery_id=item.id).order_by("-id").limit(ATTEMPT_LOG_LIMIT + 1))
    truncated = len(newest) > ATTEMPT_LOG_LIMIT
    return item, list(reversed(newest[:ATTEMPT_LOG_LIMIT])), truncated


async def retry_delivery(principal: Principal, delivery_id: str) -> OutboxItem:
    """Queue a finished delivery again, with a fresh retry window. Same id, same body."""
    item = await _find(principal, delivery_id, write=True)
    if item.status == "cancelled":
        raise Conflict("This delivery was cancelled and cannot be sent.", code="delivery_cancelled")
    if item.status in ("pending", "delivering"):
        raise Conflict("This delivery is already queued.", code="delivery_in_progress")
    now = utcnow()
    updated = await OutboxItem.filter(id=item.id, status__in=("succeeded", "failed")).update(
        status="pending", next_attempt_at=now, window_start=now, completed_at=None
    )
    if not updated:
        raise Conflict("This delivery is already queued.", code="delivery_in_progress")
    await outbox.wake_after_commit()
    await item.refresh_from_db()
    return item


async def cancel_delivery(principal: Principal, delivery_id: str) -> OutboxItem:
    """Stop a queued delivery for good (it stays in the log as ``cancelled``). One already
    handed to its channel may still arrive: the attempt in flight is not called back."""
    item = await _find(principal, delivery_id, write=True)
    who = f"API key {principal.api_key_id}" if principal.kind == "api_key" or principal.user is None else principal.user.email
    if not await outbox.cancel([item.id], f"cancelled by {who}"):
        raise Conflict("This delivery is already finished.", code="delivery_finished")
    await item.refresh_from_db()
    return item


async def _announce_failure(item: dict[str, Any], result: DeliveryResult) -> None:
    conversation_id = item.get("conversation_id")
    if not conversation_id:
        return
    owner = await Conversation.filter(id=conversation_id).values_list("user_id", flat=True)
    if owner:
        await bus.emit_on_commit(
            "delivery.failed",
            bus.conversation_rooms(conversation_id, str(owner[0])),
            delivery_failed(item, status_code=result.status_code, error=result.error, failed_at=utcnow()),
        )


outbox.on_failed(_announce_failure)
