"""What the fakes share: requests recorded as accepted or rejected, and waiting for them
without polling (each arrival wakes the waiters)."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

__all__ = ["Arrivals"]

R = TypeVar("R")


class Arrivals(Generic[R]):
    def __init__(self, label: str) -> None:
        self.label = label
        self.received: list[R] = []
        self.rejected: list[R] = []
        self._changed = asyncio.Event()

    def arrived(self, record: R, accepted: bool = True) -> None:
        (self.received if accepted else self.rejected).append(record)
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[R]:
        """All accepted ones, once there are at least ``count``."""
        return await self._wait(self.received, count, timeout, "accepted")

    async def wait_for_rejected(self, count: int, timeout: float = 10.0) -> list[R]:
        return await self._wait(self.rejected, count, timeout, "rejected")

    async def _wait(self, records: list[R], count: int, timeout: float, what: str) -> list[R]:
        try:
            async with asyncio.timeout(timeout):
                while len(records) < count:
                    await self._changed.wait()
        except TimeoutError:
            reasons = sorted({str(getattr(r, "reason", "") or "") for r in self.rejected})
            raise AssertionError(
                f"{self.label}: {len(records)} {what} pushes, waited for {count}; rejected reasons: {reasons}"
            ) from None
        return list(records)
