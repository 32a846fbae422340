"""Per-day usage limits of the chat side (the plan's ``messages_per_day``)."""

from __future__ import annotations

from datetime import datetime, time, timezone

from ..models.chat import Message
from ..models.core import Organization
from ..kernel.plans import enforce_limit
from ..kernel.timefmt import utcnow

__all__ = ["check_messages_per_day", "messages_today"]


def _start_of_day(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return datetime.combine(now.date(), time.min, tzinfo=timezone.utc)


async def messages_today(organization_id: str) -> int:
    """Messages (from people and agents) stored in the organization since 00:00 UTC."""
    return await Message.filter(
        conversation__organization_id=organization_id, created_at__gte=_start_of_day()
    ).count()


async def check_messages_per_day(organization: Organization) -> None:
    """402 ``plan_limit_reached`` once today's messages reach the plan's limit. Unlimited
    plans return before counting, so the default plan pays nothing for it. Concurrent sends
    right at the limit may pass it by a few (the count is not locked)."""
    org_id = str(organization.id)
    await enforce_limit(organization.plan, "messages_per_day", lambda: messages_today(org_id))
