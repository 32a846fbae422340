"""The delivery log: list and inspect outbox items with their attempts; retry one by hand."""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Q

from .. import outbox
from ..auth import Principal, require_admin, require_scope
from ..errors import Conflict, NotFound, ValidationFailed
from ..models.chat import DeliveryAttempt, OutboxItem
from ..pagination import decode_cursor, encode_cursor
from ..timefmt import utcnow
from ..transactions import on_commit

__all__ = ["list_deliveries", "get_delivery", "retry_delivery", "STATUSES"]

STATUSES = ("pending", "delivering", "succeeded", "failed", "cancelled")


def _check_reader(principal: Principal, scope: str) -> None:
    require_scope(principal, scope)
    if principal.kind == "session":
        require_admin(principal)  # payloads carry other people's messages


async def list_deliveries(
    principal: Principal,
    *,
    status: str | None = None,
    agent_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[OutboxItem], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    _check_reader(principal, "agents:read")
    query = OutboxItem.filter(organization_id=principal.org_id)
    if status is not None:
        if status not in STATUSES:
            raise ValidationFailed(details={"status": [f"must be one of {', '.join(STATUSES)}"]})
        query = query.filter(status=status)
    if agent_id is not None:
        query = query.filter(agent_id=agent_id)
    if cursor:
        position = decode_cursor(cursor)
        try:
            at = datetime.fromisoformat(str(position["t"]))
            last_id = str(position["id"])
        except (KeyError, ValueError):
            raise ValidationFailed(details={"cursor": ["is not a valid cursor"]}) from None
        query = query.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=last_id))
    rows = list(await query.order_by("-created_at", "-id").limit(limit + 1))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor({"t": rows[-1].created_at.isoformat(), "id": rows[-1].id})
    return rows, next_cursor


async def _find(principal: Principal, delivery_id: str) -> OutboxItem:
    item = await OutboxItem.get_or_none(id=delivery_id, organization_id=principal.org_id)
    if item is None:
        raise NotFound("Delivery not found.")
    return item


async def get_delivery(principal: Principal, delivery_id: str) -> tuple[OutboxItem, list[DeliveryAttempt]]:
    _check_reader(principal, "agents:read")
    item = await _find(principal, delivery_id)
    attempts = await DeliveryAttempt.filter(delivery_id=item.id).order_by("number", "id")
    return item, list(attempts)


async def retry_delivery(principal: Principal, delivery_id: str) -> OutboxItem:
    """Queue a finished delivery again, with a fresh retry window. Same id, same body."""
    _check_reader(principal, "agents:write")
    item = await _find(principal, delivery_id)
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
    await on_commit(_wake)
    await item.refresh_from_db()
    return item


async def _wake() -> None:
    outbox.wake()
