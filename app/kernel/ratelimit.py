"""Fixed-window request counters, in memory.

Used where a guess costs us CPU or an attacker a chance: logging in and accepting invitations.
Counters are per process and forgotten on restart, which is enough to make password guessing
slow; a multi-process deployment multiplies the allowance by the number of processes.
"""

from __future__ import annotations

import math
import time

from .errors import RateLimited

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._counts: dict[str, tuple[float, int]] = {}
        self._next_sweep = 0.0

    def hit(self, key: str) -> None:
        """Count one request for ``key``; raise 429 ``rate_limited`` past the limit."""
        now = time.monotonic()
        started, count = self._counts.get(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        count += 1
        self._counts[key] = (started, count)
        if len(self._counts) > 50_000 and now >= self._next_sweep:
            # At most once a window: with that many live keys a sweep every request would cost more.
            self._next_sweep = now + self.window
            self._forget_expired(now)
        if count > self.limit:
            retry_after = max(1, math.ceil(self.window - (now - started)))
            raise RateLimited(
                "Too many attempts. Try again later.",
                details={"retry_after": retry_after},
                headers={"Retry-After": str(retry_after)},
            )

    def _forget_expired(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if now - v[0] < self.window}
