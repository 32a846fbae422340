"""Transactions whose side effects wait for the commit.

``atomic()`` opens a transaction (or joins the one already open); ``on_commit(fn)`` queues an
async callback that runs only after the outermost transaction commits, so a realtime event, an
outbox wake-up or a change event is never seen for a write that rolled back. Outside any
``atomic()`` block, ``on_commit`` runs the callback at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncIterator, Awaitable, Callable

from tortoise.transactions import in_transaction

__all__ = ["atomic", "on_commit", "in_atomic"]

log = logging.getLogger("switchboard.transactions")

Callback = Callable[[], Awaitable[Any]]
_pending: contextvars.ContextVar[list[Callback] | None] = contextvars.ContextVar(
    "switchboard_on_commit", default=None
)


class _TrackedLock:
    """Wraps tortoise's SQLite transaction lock to know whether this context holds it."""

    __slots__ = ("lock", "held")

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = False

    async def acquire(self) -> None:
        await self.lock.acquire()
        self.held = True

    def release(self) -> None:
        self.held = False
        self.lock.release()


@asynccontextmanager
async def _transaction() -> AsyncIterator[Any]:
    """tortoise's ``in_transaction()``, safe to cancel while it begins.

    tortoise takes the connection (SQLite: a process-wide lock; PostgreSQL: a pooled
    connection) and then awaits BEGIN; a task cancelled in between (a client hanging up,
    shutdown cancelling a worker) never reaches ``__aexit__``, so the lock stays held or the
    connection leaks, and later transactions wait forever. Here a failed entry gives them back.
    """
    context = in_transaction()
    tracked: _TrackedLock | None = None
    lock = getattr(context, "_trxlock", None)
    if isinstance(lock, asyncio.Lock):
        tracked = _TrackedLock(lock)
        context._trxlock = tracked  # type: ignore[attr-defined]
    try:
        conn = await context.__aenter__()
    except BaseException as exc:
        if getattr(context, "token", None) is not None:  # connection taken: roll back, give back
            with suppress(Exception):
                await context.__aexit__(type(exc), exc, exc.__traceback__)
        if tracked is not None and tracked.held:
            tracked.release()
        raise
    try:
        yield conn
    except BaseException as exc:
        await context.__aexit__(type(exc), exc, exc.__traceback__)  # rolls back; never swallows
        raise
    else:
        await context.__aexit__(None, None, None)


@asynccontextmanager
async def atomic() -> AsyncIterator[Any]:
    if _pending.get() is not None:  # nested: part of the outer transaction
        async with _transaction() as conn:
            yield conn
        return
    callbacks: list[Callback] = []
    token = _pending.set(callbacks)
    try:
        async with _transaction() as conn:
            yield conn
    finally:
        _pending.reset(token)
    for callback in callbacks:
        await _run(callback)


async def _run(callback: Callback) -> None:
    try:
        await callback()
    except Exception:  # noqa: BLE001 - the write is committed; a failed notification must not undo it
        log.exception("on_commit callback failed")


async def on_commit(callback: Callback) -> None:
    """Run ``callback`` after the surrounding transaction commits; outside one, at once (the
    caller's write is already committed). Either way its failure is logged, never raised."""
    pending = _pending.get()
    if pending is None:
        await _run(callback)
    else:
        pending.append(callback)


def in_atomic() -> bool:
    """Whether an ``atomic()`` block is open in this context."""
    return _pending.get() is not None
