"""A background pass that runs when there is work: at start, when nudged, when the next
known deadline comes, and every ``idle`` seconds in case another process left some."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Awaitable, Callable, ClassVar

from .timefmt import utcnow

__all__ = ["Recurring"]

log = logging.getLogger("switchboard")


class Recurring:
    """Subclass per pass; ``SomePass.nudge()`` pokes the one running in this process."""

    _running: ClassVar[dict[type["Recurring"], "Recurring"]] = {}

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[int]],
        *,
        next_due: Callable[[], Awaitable[datetime | None]] | None = None,
        idle: float = 30.0,
    ) -> None:
        self.name = name
        self._work, self._next_due, self.idle = work, next_due, idle
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Look again now (new work, or a deadline sooner than the one waited for)."""
        self._wake.set()

    @classmethod
    def nudge(cls) -> None:
        running = Recurring._running.get(cls)
        if running is not None:
            running.poke()

    def start(self) -> None:
        Recurring._running[type(self)] = self
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if Recurring._running.get(type(self)) is self:
            del Recurring._running[type(self)]
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self.idle
            try:
                while await self._work():  # until a pass finds nothing left
                    pass
                upcoming = await self._next_due() if self._next_due is not None else None
                if upcoming is not None:
                    delay = min(delay, max(0.0, (upcoming - utcnow()).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the pass for good
                log.exception("%s: pass failed", self.name)
                delay = 1.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
