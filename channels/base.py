"""What every outbound channel shares: one request shape, one result shape, one method."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outbound", "DeliveryResult", "Channel"]


@dataclass(frozen=True)
class Outbound:
    """One attempt at one delivery. ``body`` is the exact bytes sent on every attempt."""

    delivery_id: str
    event: str
    url: str
    body: bytes
    secrets: tuple[str, ...] = ()  # signing secrets, newest first
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, when the receiver asked for it


class Channel:
    """A way out of the machine. ``deliver`` never raises for a failed call: it reports it."""

    async def deliver(self, outbound: Outbound) -> DeliveryResult:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:
        return None
