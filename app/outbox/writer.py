"""The one writer of outbox rows.

``write`` inserts a row through the caller's connection, so it commits or rolls back with
the change that caused it; ``enqueue`` does that on the current tortoise transaction and
wakes the worker after the commit. ``row`` builds what is written.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from tortoise import connections

from ..kernel import crypto
from ..kernel.db import insert_sql, placeholders
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..kernel.transactions import on_commit
from . import registry

__all__ = ["row", "write", "write_many", "enqueue", "enqueue_rows", "wake_after_commit", "sealed_owner"]

# The ``window_start`` of an item sent once: its retry window closed before it opened, so the
# worker's rule (no retry once ``max_age`` has passed since ``window_start``) fails it after
# its first attempt, whatever that attempt's outcome.
_NO_RETRY_WINDOW = datetime(2000, 1, 1, tzinfo=timezone.utc)


def sealed_owner(item_id: str) -> str:
    """What a sealed body is bound to: it opens only as this item's."""
    return f"outbox:{item_id}"


def row(
    *,
    organization_id: str,
    channel: str,
    kind: str,
    event: str,
    target: str,
    payload: Mapping[str, Any] | None = None,
    ordering_key: str | None = None,
    ordering_seq: int = 0,
    secret_ref: str | None = None,
    hold_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    agent_id: str | None = None,
    conversation_id: str | None = None,
    message_id: str | None = None,
    group_id: str | None = None,
    sealed: bool = False,
    failed: str | None = None,
    now: datetime | None = None,
    body: str | None = None,
    retry: bool = True,
) -> dict[str, Any]:
    """One delivery as column -> value. Without an ``ordering_key`` the item is ordered
    with nothing else. ``sealed`` stores the body encrypted (it carries a secret, such as a
    one-time token): the worker opens it for the channel, the delivery log never shows it.
    ``failed`` records it as failed for that reason without an attempt (it cannot be sent
    from this server), so it still shows where it would have gone. ``body`` is ``payload``
    already serialised, for callers writing the same body many times. ``retry=False``: one
    attempt only (a test delivery: its result is reported, not pursued)."""
    now = now or utcnow()
    item_id = new_id("delivery")
    if body is None:
        body = json.dumps(payload or {}, separators=(",", ":"), ensure_ascii=False)
    return {
        "id": item_id,
        "organization_id": organization_id,
        "channel": channel,
        "kind": kind,
        "event": event,
        "target": target,
        "body": crypto.encrypt(body, sealed_owner(item_id)) if sealed else body,
        "headers": json.dumps(dict(headers or {}), separators=(",", ":")),
        "secret_ref": secret_ref,
        "hold_key": hold_key,
        "ordering_key": ordering_key or item_id,
        "ordering_seq": ordering_seq,
        "status": "failed" if failed else "pending",
        "last_error": failed,
        "attempts": 0,
        "next_attempt_at": now,
        "window_start": now if retry else _NO_RETRY_WINDOW,
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "group_id": group_id,
        "created_at": now,
        "updated_at": now,
        "completed_at": now if failed else None,
    }


def write(execute: Callable[[str, list[Any]], Any], item: dict[str, Any], *, dialect: str = "sqlite") -> Any:
    """INSERT ``item`` through ``execute(sql, params)`` (a sqlite3 connection's ``execute``,
    or a tortoise connection's ``execute_query``, whose awaitable is returned)."""
    sql, params = insert_sql("outbox", item)
    return execute(placeholders(dialect, sql), params)


def write_many(execute_many: Callable[[str, list[list[Any]]], Any], items: list[dict[str, Any]], *, dialect: str = "sqlite") -> Any:
    """INSERT ``items`` (rows from ``row``, so all with the same columns) in one statement
    run many times: a fan-out of thousands costs one round trip."""
    sql, _ = insert_sql("outbox", items[0])
    return execute_many(placeholders(dialect, sql), [list(item.values()) for item in items])


async def enqueue(**fields: Any) -> str:
    """Queue one delivery inside the current transaction; it goes out after the commit.
    Takes ``row``'s arguments; returns the delivery id."""
    item = row(**fields)
    conn = connections.get("default")
    await write(conn.execute_query, item, dialect=conn.capabilities.dialect)
    await wake_after_commit()
    return str(item["id"])


async def enqueue_rows(items: list[dict[str, Any]]) -> None:
    """Queue ``row``s inside the current transaction, in one statement; they go out after the
    commit. Nothing to queue: nothing done."""
    if items:
        conn = connections.get("default")
        await write_many(conn.execute_many, items, dialect=conn.capabilities.dialect)
        await wake_after_commit()


async def wake_after_commit() -> None:
    """Wake the worker once the surrounding transaction commits."""
    await on_commit(_wake)


async def _wake() -> None:
    registry.wake()
