"""Entry change events: the one hook point for what later becomes organization webhooks.

Each entry create, update and delete produces one ``EntryChanged`` carrying the values before
and after (keyed by field id), but only when something actually changed. Events are queued with
``app.transactions.on_commit`` so a subscriber never sees a write that rolled back.

    from app.store import events
    events.subscribe(my_async_handler)      # async def my_async_handler(event: EntryChanged)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Literal

from ..transactions import on_commit

__all__ = ["EntryChanged", "subscribe", "unsubscribe", "has_subscribers", "emit"]

log = logging.getLogger("switchboard.store.events")

Handler = Callable[["EntryChanged"], Awaitable[Any]]
_subscribers: list[Handler] = []


@dataclass(frozen=True)
class EntryChanged:
    type: Literal["entry.created", "entry.updated", "entry.deleted"]
    organization_id: str
    database_id: str
    table_id: str
    entry_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor_id: str | None
    occurred_at: datetime
    changed_fields: list[str] = field(default_factory=list)


def subscribe(handler: Handler) -> Handler:
    if handler not in _subscribers:
        _subscribers.append(handler)
    return handler


def unsubscribe(handler: Handler) -> None:
    if handler in _subscribers:
        _subscribers.remove(handler)


def has_subscribers() -> bool:
    return bool(_subscribers)


async def emit(batch: list[EntryChanged]) -> None:
    """Deliver a batch of events to every subscriber after the current transaction commits."""
    if not batch or not _subscribers:
        return
    handlers = list(_subscribers)

    async def deliver() -> None:
        for event in batch:
            for handler in handlers:
                try:
                    await handler(event)
                except Exception:  # noqa: BLE001 - a subscriber must not break the write path
                    log.exception("entry event subscriber failed")

    await on_commit(deliver)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    before = before or {}
    after = after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
