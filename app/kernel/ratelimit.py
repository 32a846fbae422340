"""Fixed-window request counters: one limiter for every limit, in memory or in Redis.

Buckets: ``requests`` (each API key's and each person's allowance per minute, by plan; callers
without a principal by client address), and the narrower guards on logging in, accepting
invitations and password-reset mail (built by the app, see ``app/serving/app.py``).

With ``REDIS_URL`` set the counters live in Redis, so the processes of one deployment share
them: a count is one script call (INCR, PEXPIRE on the first count, PTTL), and the counts of
one turn of the event loop share one round trip. Without it they live in this process, one
dict lookup and store per count. If Redis cannot be reached nobody is refused for it: each
process counts on its own until Redis answers again, and says so in the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Protocol

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from .auth import Principal
from .client_address import ClientAddresses
from .errors import RateLimited
from .plans import DEFAULT_REQUESTS_PER_MINUTE, load_plans

__all__ = ["Bucket", "Quota", "RateLimits", "MemoryCounter", "RedisCounter"]

log = logging.getLogger("switchboard.ratelimit")

REQUESTS = "requests"  # the per-principal / per-address bucket
_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Bucket:
    limit: int
    window: float = _MINUTE


class Quota(NamedTuple):
    """One count's outcome: what the X-RateLimit-* headers say. (A tuple: made per request.)"""

    limit: int
    used: int  # requests counted in this window, this one included
    reset: int  # whole seconds until the window starts again

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        )

    def refusal(self, message: str = "Too many requests. Try again later.") -> RateLimited | None:
        """The 429 to answer with, or None while within the limit."""
        if self.used <= self.limit:
            return None
        return RateLimited(
            message,
            details={"limit": self.limit, "retry_after": self.reset},
            headers={"Retry-After": str(self.reset), **dict(self.headers())},  # a narrower limit's 429 keeps its own
        )


class Counter(Protocol):
    async def incr(self, key: str, window: float) -> tuple[int, float]:
        """Count one for ``key``: (the count in its window, seconds until the window ends)."""
        ...

    async def close(self) -> None: ...


class MemoryCounter:
    """Counters of this process: one dict lookup and one store per count."""

    _SWEEP_ABOVE = 50_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: dict[str, tuple[float, int]] = {}  # key -> (window ends, count)
        self._next_sweep = 0.0
        self._clock = clock

    async def incr(self, key: str, window: float) -> tuple[int, float]:
        now = self._clock()
        ends, count = self._counts.get(key, (0.0, 0))
        if now >= ends:
            ends, count = now + window, 0
        count += 1
        self._counts[key] = (ends, count)
        if len(self._counts) > self._SWEEP_ABOVE and now >= self._next_sweep:
            # At most once a minute: with that many live keys a sweep every count would cost more.
            self._next_sweep = now + _MINUTE
            self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        return count, ends - now

    async def close(self) -> None:
        self._counts.clear()


_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisCounter:
    """Counters shared by every process using the same Redis; this process's own while
    Redis does not answer (tried again after ``retry_after`` seconds).

    Counts asked for in the same turn of the event loop go to Redis together, one pipeline
    of script calls in one round trip: under load a count costs a fraction of a call."""

    PREFIX = "switchboard:ratelimit:"

    def __init__(self, url: str, *, timeout: float = 0.5, retry_after: float = 5.0) -> None:
        # No retries and short timeouts: a count that cannot be made quickly is made locally.
        self._redis: Any = redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._sha = hashlib.sha1(_SCRIPT.encode()).hexdigest()
        self._local = MemoryCounter()
        self._retry_after = retry_after
        self._down_until = 0.0  # monotonic; 0: Redis answered last time
        self._batch: list[tuple[str, float, asyncio.Future[tuple[int, float]]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def incr(self, key: str, window: float) -> tuple[int, float]:
        if self._down_until and time.monotonic() < self._down_until:
            return await self._local.incr(key, window)
        future: asyncio.Future[tuple[int, float]] = asyncio.get_running_loop().create_future()
        self._batch.append((key, window, future))
        if len(self._batch) == 1:  # the first of this turn sends them all, next turn
            task = asyncio.create_task(self._send())
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return await future

    async def _send(self) -> None:
        batch, self._batch = self._batch, []
        try:
            try:
                replies = await self._run([(key, window) for key, window, _ in batch])
            except (RedisError, OSError) as exc:
                if not self._down_until:
                    log.warning("rate limits: Redis unreachable (%s); counting in this process until it answers", exc)
                self._down_until = time.monotonic() + self._retry_after
                replies = [await self._local.incr(key, window) for key, window, _ in batch]
            else:
                if self._down_until:
                    log.warning("rate limits: Redis answers again; counters are shared once more")
                    self._down_until = 0.0
        except BaseException as exc:  # cancelled at shutdown, or a bug: no request is left waiting
            cancelled = isinstance(exc, asyncio.CancelledError)
            for _, _, future in batch:
                if future.done():
                    continue
                if cancelled:
                    future.cancel()
                else:
                    future.set_exception(exc)
            if cancelled:
                raise
            return
        for (_, _, future), reply in zip(batch, replies):
            if not future.done():  # a request that went away meanwhile
                future.set_result(reply)

    async def _run(self, counts: list[tuple[str, float]]) -> list[tuple[int, float]]:
        replies: list[Any] = [None] * len(counts)
        todo = list(range(len(counts)))
        for attempt in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    key, window = counts[i]
                    pipe.evalsha(self._sha, 1, self.PREFIX + key, max(1, int(window * 1000)))
                results = await pipe.execute(raise_on_error=False)
            for i, result in zip(todo, results):
                replies[i] = result
            # A script Redis does not know (a restart, SCRIPT FLUSH) ran nothing: load, run those again.
            todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
            if not todo:
                break
            await self._redis.script_load(_SCRIPT)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [(int(count), int(ttl_ms) / 1000) for count, ttl_ms in replies]

    async def close(self) -> None:
        for task in list(self._sending):
            task.cancel()
        await self._redis.aclose()


class RateLimits:
    """Every bucket of one app, on one counter."""

    def __init__(
        self,
        counter: Counter,
        buckets: dict[str, Bucket],
        *,
        addresses: ClientAddresses,
        requests_per_minute: int | None = None,
        default_plan: str = "self-hosted",
    ) -> None:
        self.counter = counter
        self.buckets = buckets
        self.addresses = addresses
        # None: each plan's own figure; 0: no per-caller limit at all.
        self._override = requests_per_minute
        self._default_plan = default_plan

    @property
    def counts_requests(self) -> bool:
        return self._override != 0

    async def hit(self, bucket: str, key: str) -> Quota:
        """Count one against ``bucket`` for ``key``; raise 429 ``rate_limited`` past its limit."""
        b = self.buckets[bucket]
        quota = await self._count(f"{bucket}:{key}", b.limit, b.window)
        refused = quota.refusal()
        if refused is not None:
            raise refused
        return quota

    async def count_principal(self, principal: Principal) -> Quota | None:
        """Count one request for an API key (per key) or a person (all their sessions);
        None when the plan sets no limit. The caller refuses past the limit."""
        limit = self.per_minute(principal.organization.plan)
        if not limit:
            return None
        if principal.api_key_id is not None:
            key = f"{REQUESTS}:key:{principal.api_key_id}"
        elif principal.user is not None:
            key = f"{REQUESTS}:user:{principal.user.id}"
        else:
            key = f"{REQUESTS}:{principal.kind}:{principal.org_id}"
        return await self._count(key, limit, _MINUTE)

    async def count_address(self, address: str) -> Quota | None:
        """Count one request without a principal, for the client address (see ``addresses``)."""
        limit = self.per_minute(self._default_plan)
        if not limit:
            return None
        return await self._count(f"{REQUESTS}:addr:{address}", limit, _MINUTE)

    def per_minute(self, plan_key: str) -> int:
        if self._override is not None:
            return self._override
        plan = load_plans().get(plan_key)
        return plan.requests_per_minute if plan is not None else DEFAULT_REQUESTS_PER_MINUTE

    async def _count(self, key: str, limit: int, window: float) -> Quota:
        count, left = await self.counter.incr(key, window)
        return Quota(limit, count, math.ceil(left) or 1)

    async def close(self) -> None:
        await self.counter.close()
