"""Transactions whose side effects wait for the commit.

``atomic()`` opens a transaction (or joins the one already open); ``on_commit(fn)`` queues an
async callback that runs only after the outermost transaction commits, so a realtime event, an
outbox wake-up or a change event is never seen for a write that rolled back. Outside any
``atomic()`` block, ``on_commit`` runs the callback at once.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from tortoise.transactions import in_transaction

__all__ = ["atomic", "on_commit", "in_atomic"]

log = logging.getLogger("switchboard.transactions")

Callback = Callable[[], Awaitable[Any]]
_pending: contextvars.ContextVar[list[Callback] | None] = contextvars.ContextVar(
    "switchboard_on_commit", default=None
)


@asynccontextmanager
async def atomic() -> AsyncIterator[Any]:
    if _pending.get() is not None:  # nested: part of the outer transaction
        async with in_transaction() as conn:
            yield conn
        return
    callbacks: list[Callback] = []
    token = _pending.set(callbacks)
    try:
        async with in_transaction() as conn:
            yield conn
    finally:
        _pending.reset(token)
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # noqa: BLE001 - the write is committed; a failed notification must not undo it
            log.exception("on_commit callback failed")


async def on_commit(callback: Callback) -> None:
    pending = _pending.get()
    if pending is None:
        await callback()
    else:
        pending.append(callback)


def in_atomic() -> bool:
    """Whether an ``atomic()`` block is open in this context."""
    return _pending.get() is not None
