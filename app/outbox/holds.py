"""Holding a group of outbox items: while a hold names their ``hold_key`` they are not
claimed and spend no attempts (a disabled agent's deliveries, for instance)."""

from __future__ import annotations

from ..kernel.timefmt import utcnow
from ..models.chat import OutboxHold, OutboxItem
from .writer import wake_after_commit

__all__ = ["hold", "release"]


async def hold(key: str) -> None:
    await OutboxHold.get_or_create(key=key)


async def release(key: str) -> None:
    """Lift the hold; the held items go out now, with a fresh retry window (time spent held
    does not count against them)."""
    if not await OutboxHold.filter(key=key).delete():
        return
    now = utcnow()
    await OutboxItem.filter(hold_key=key, status="pending").update(window_start=now, next_attempt_at=now)
    await wake_after_commit()
