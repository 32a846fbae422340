"""Waiting for items' first attempts, for callers that answer once delivery has been tried
(a push to one person's devices, an agent's webhook test)."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

from ..kernel.db import fetch_dicts
from ..kernel.waiters import Waiters
from . import registry

__all__ = ["wait_attempted"]

# By item id: woken when this process's worker has recorded an attempt of it.
_attempted: Waiters[None] = Waiters()


def _woken(ids: list[str]) -> None:
    for item_id in ids:
        _attempted.wake(item_id, None)


registry.on_attempted(_woken)

_POLL_SECONDS = 0.25


async def _unattempted(ids: list[str]) -> set[str]:
    marks = ", ".join("?" for _ in ids)
    rows = await fetch_dicts(
        f"SELECT o.id FROM outbox o WHERE o.id IN ({marks}) AND o.status IN ('pending', 'delivering') "
        "AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = o.id)",
        list(ids),
    )
    return {str(r["id"]) for r in rows}


async def wait_attempted(ids: list[str], timeout: float) -> None:
    """Until each item has had its first attempt (or was finished without one), or
    ``timeout``. This process's worker wakes the wait at once; another process's work
    (several gateways share the outbox) is seen by reading the rows every quarter second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with ExitStack() as stack:
        watches = {item_id: stack.enter_context(_attempted.watch(item_id)) for item_id in ids}
        while watches and (left := deadline - loop.time()) > 0:
            item_id, watch = next(iter(watches.items()))
            try:
                await watch.next(min(left, _POLL_SECONDS))
            except TimeoutError:
                left_over = await _unattempted(list(watches))
                watches = {i: w for i, w in watches.items() if i in left_over}
            else:
                del watches[item_id]
