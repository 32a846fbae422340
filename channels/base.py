"""What every outbound channel shares: one request shape, one result shape, one method.

A channel is one way out of the machine (``webhook``, ``email``, ...). The outbox worker
hands it one ``Outbound`` per attempt and records the ``DeliveryResult``; retries, leases,
ordering and the delivery log are the outbox's, the same for every channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Outbound", "DeliveryResult", "Outcome", "Channel"]

# delivered: done. retry: try again later (after ``retry_after`` when given). failed: never
# retried. gone: the target no longer exists (a dead token, an unknown mailbox): failed for
# good, and the owner of the target is told so it can forget it.
Outcome = Literal["delivered", "retry", "failed", "gone"]


@dataclass(frozen=True)
class Outbound:
    """One attempt at one delivery. ``body`` is the exact bytes sent on every attempt."""

    delivery_id: str
    channel: str
    event: str
    target: str  # a URL, an email address, a device token ... as the channel reads it
    body: bytes
    secrets: tuple[str, ...] = ()  # signing secrets, newest first
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    latency_ms: int = 0
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds, when the receiver asked for it

    @property
    def ok(self) -> bool:
        return self.outcome == "delivered"


class Channel:
    """A way out of the machine. ``deliver`` never raises for a failed call: it reports it.
    ``timeout`` bounds one attempt (the outbox's lease is derived from it)."""

    timeout: float = 5.0

    async def deliver(self, outbound: Outbound) -> DeliveryResult:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:
        return None
