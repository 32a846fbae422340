"""Waiting for something that happens elsewhere, holding nothing while waiting.

A ``Waiters`` registry maps a key (a message, a conversation, an outbox item) to the watches
open on it. Whoever sees the thing happen calls ``wake(key, value)``; every open watch of the
key keeps the value until its owner takes it, so a watch opened *before* the change that may
cause it misses nothing, however fast that change is. A watch is closed when its ``with``
block ends, however it ends (a request cancelled by its client hanging up included), so no
waiter outlives its caller.

Waking is in-process and synchronous; who feeds a registry decides what reaches it (after a
commit, from the bus, from another process through Redis).
"""

from __future__ import annotations

import asyncio
from collections import deque
from contextlib import contextmanager
from typing import Generic, Iterator, TypeVar

__all__ = ["Waiters", "Watch"]

V = TypeVar("V")


class Watch(Generic[V]):
    """What ``wake`` brought for one key since the watch was opened, in order."""

    __slots__ = ("_arrived", "_signal")

    def __init__(self) -> None:
        self._arrived: deque[V] = deque()
        self._signal = asyncio.Event()

    def put(self, value: V) -> None:
        self._arrived.append(value)
        self._signal.set()

    async def next(self, timeout: float) -> V:
        """The oldest value not yet taken, waiting at most ``timeout`` seconds for one
        (``TimeoutError`` when none came)."""
        if not self._arrived:
            if timeout <= 0:
                raise TimeoutError
            self._signal.clear()
            async with asyncio.timeout(timeout):
                await self._signal.wait()
        return self._arrived.popleft()


class Waiters(Generic[V]):
    def __init__(self) -> None:
        self._open: dict[str, set[Watch[V]]] = {}

    @contextmanager
    def watch(self, key: str) -> Iterator[Watch[V]]:
        """A watch on ``key`` for the duration of the ``with`` block."""
        watch: Watch[V] = Watch()
        self._open.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._open.get(key)
            if watches is not None:
                watches.discard(watch)
                if not watches:
                    del self._open[key]

    def wake(self, key: str, value: V) -> None:
        for watch in self._open.get(key, ()):
            watch.put(value)

    def watching(self, key: str) -> int:
        """How many watches are open on ``key``."""
        return len(self._open.get(key, ()))

    def __len__(self) -> int:
        """How many keys are watched."""
        return len(self._open)
