"""Store change events: the one hook point for what later becomes organization webhooks.

Events:

* ``EntryChanged`` (``entry.created`` / ``entry.updated`` / ``entry.deleted``) for each entry
  write that changes something, with the values before and after (keyed by field id).
  Entries recomputed because a linked entry changed produce ``entry.updated`` too.
* ``TableDeleted`` (``table.deleted``) for each table deleted, on its own or with its database.
* ``DatabaseDeleted`` (``database.deleted``), after the ``table.deleted`` of its tables.

Handlers subscribe to one of two phases:

* ``in_transaction`` runs inside the write's transaction, before it commits, on the same
  connection: an outbox row written there commits or rolls back with the change. An
  exception from such a handler rolls the write back (the client gets the error).
* ``after_commit`` (the default) runs once the transaction has committed, never for a write
  that rolled back. Its exceptions are logged; the write stands.

    from . import events
    events.subscribe(write_outbox_rows, phase=events.IN_TRANSACTION)
    events.subscribe(notify_listeners)          # async def notify_listeners(event) -> None

A handler may say which organizations it cares for (``wants``): a write that no handler
wants builds no events at all, so a hook that serves a few organizations costs the others
nothing. A ``batched`` handler gets each write's events as one list (one outbox insert for
an import of thousands, not one each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Awaitable, Callable, Literal, Union

from ..kernel.transactions import in_atomic, on_commit

__all__ = [
    "EntryChanged",
    "TableDeleted",
    "DatabaseDeleted",
    "StoreEvent",
    "Phase",
    "IN_TRANSACTION",
    "AFTER_COMMIT",
    "subscribe",
    "unsubscribe",
    "has_subscribers",
    "wanted",
    "emit",
]

log = logging.getLogger("switchboard.store.events")

Phase = Literal["in_transaction", "after_commit"]
IN_TRANSACTION: Phase = "in_transaction"
AFTER_COMMIT: Phase = "after_commit"


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
    # The entry's own times when they are not ``occurred_at`` (an update keeps its creation
    # time; a delete shows the entry as it was).
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class TableDeleted:
    organization_id: str
    database_id: str
    table_id: str
    actor_id: str | None
    occurred_at: datetime
    type: Literal["table.deleted"] = "table.deleted"


@dataclass(frozen=True)
class DatabaseDeleted:
    organization_id: str
    database_id: str
    table_ids: list[str]
    actor_id: str | None
    occurred_at: datetime
    type: Literal["database.deleted"] = "database.deleted"


StoreEvent = Union[EntryChanged, TableDeleted, DatabaseDeleted]
Handler = Callable[[Any], Awaitable[Any]]
Interest = Callable[[str], Awaitable[bool]]  # organization id -> whether its writes matter
_subscribers: dict[Phase, list[Handler]] = {IN_TRANSACTION: [], AFTER_COMMIT: []}
_interest: dict[Handler, Interest] = {}
_batched: set[Handler] = set()


def subscribe(
    handler: Handler, *, phase: Phase = AFTER_COMMIT, wants: Interest | None = None, batched: bool = False
) -> Handler:
    if phase not in _subscribers:
        raise ValueError(f"unknown phase {phase!r}")
    if handler not in _subscribers[phase]:
        _subscribers[phase].append(handler)
    if wants is not None:
        _interest[handler] = wants
    if batched:
        _batched.add(handler)
    return handler


def unsubscribe(handler: Handler) -> None:
    for handlers in _subscribers.values():
        if handler in handlers:
            handlers.remove(handler)
    _interest.pop(handler, None)
    _batched.discard(handler)


def has_subscribers() -> bool:
    return any(_subscribers.values())


async def wanted(organization_id: str) -> bool:
    """Whether any handler cares for this organization's writes (asked once per write)."""
    for handlers in _subscribers.values():
        for handler in handlers:
            wants = _interest.get(handler)
            if wants is None or await wants(organization_id):
                return True
    return False


async def _hand(handler: Handler, batch: list[Any]) -> None:
    if handler in _batched:
        await handler(batch)
        return
    for event in batch:
        await handler(event)


async def emit(batch: list[Any]) -> None:
    """Hand a write's events to both phases. Call it inside the write's ``atomic()`` block,
    after the last statement: in-transaction handlers run now, after-commit ones are queued."""
    if not batch or not has_subscribers():
        return
    if not in_atomic():
        raise RuntimeError("store events must be emitted inside the write's transaction")
    for handler in list(_subscribers[IN_TRANSACTION]):
        await _hand(handler, batch)  # an exception here rolls the write back
    handlers = list(_subscribers[AFTER_COMMIT])
    if not handlers:
        return

    async def deliver() -> None:
        calls = [(h, e) for e in batch for h in handlers if h not in _batched]
        calls += [(h, batch) for h in handlers if h in _batched]
        for handler, given in calls:
            try:
                await handler(given)
            except Exception:  # noqa: BLE001 - the write is committed; a subscriber must not undo it
                log.exception("store event subscriber failed")

    await on_commit(deliver)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    before = before or {}
    after = after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
