"""What services plug into the outbox: who signs and where an item goes at attempt time
(resolvers), who hears of a failure or a gone target (listeners), and the wake-up call.

The outbox itself knows no agents or conversations: the chat services register here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol

from channels.base import DeliveryResult

__all__ = [
    "Recipient",
    "Resolver",
    "Listener",
    "register_resolver",
    "resolver_for",
    "on_failed",
    "on_gone",
    "on_attempted",
    "attempted",
    "Recorder",
    "on_recorded",
    "recorders",
    "failed_listeners",
    "gone_listeners",
    "wake",
    "set_worker",
    "clear_worker",
]

log = logging.getLogger("switchboard.outbox")


@dataclass(frozen=True)
class Recipient:
    """Who an item goes to, as of this attempt."""

    secrets: tuple[str, ...] = ()  # signing secrets, newest first
    target: str | None = None  # where this attempt goes, when it is not the stored target
    error: str | None = None  # set when it cannot be sent now: a retryable failed attempt
    # Whether ``target`` replaces the stored one in the delivery log (a changed webhook URL:
    # yes; a device's token, which the log must not show: no; listeners get it as "sent_to").
    record_target: bool = True
    # Static headers of the receiver's own (a shared token), as of this attempt: never stored
    # in the item, so a changed or removed header applies to deliveries still waiting.
    headers: Mapping[str, str] = field(default_factory=dict)


# secret_ref prefix ("agent") -> async fn(list of ids) -> {id: Recipient}; a missing id means
# the recipient is gone and its items are cancelled.
Resolver = Callable[[list[str]], Awaitable[dict[str, Recipient]]]
# async fn(item as a column -> value mapping, result): runs in the transaction that records it.
Listener = Callable[[dict[str, Any], DeliveryResult], Awaitable[None]]

_resolvers: dict[str, Resolver] = {}
_failed: list[Listener] = []
_gone: dict[str, list[Listener]] = {}
# fn(ids of items whose attempt was just recorded), after that commit: for callers that
# answer once delivery has been tried. In-process; others read the rows.
_attempted: list[Callable[[list[str]], None]] = []


class _Wakeable(Protocol):
    def wake(self) -> None: ...


_worker: _Wakeable | None = None


def register_resolver(prefix: str, resolver: Resolver) -> None:
    _resolvers[prefix] = resolver


def resolver_for(prefix: str) -> Resolver | None:
    return _resolvers.get(prefix)


def on_failed(listener: Listener) -> None:
    """Called for every item that failed for good (given up, refused or target gone)."""
    if listener not in _failed:
        _failed.append(listener)


def on_gone(channel: str, listener: Listener) -> None:
    """Called when ``channel`` reports that an item's target no longer exists."""
    listeners = _gone.setdefault(channel, [])
    if listener not in listeners:
        listeners.append(listener)


# item kind -> async fn([(item, result, the status it leads to)]): every recorded attempt of
# that kind's items, one call per recorded batch, in the transaction that records them.
Recorder = Callable[[list[tuple[dict[str, Any], DeliveryResult, str]]], Awaitable[None]]
_recorders: dict[str, list[Recorder]] = {}


def on_recorded(kind: str, recorder: Recorder) -> None:
    """Hear every attempt of ``kind`` items as it is recorded: status ``succeeded``,
    ``pending`` (to be retried) or ``failed`` (for good)."""
    listeners = _recorders.setdefault(kind, [])
    if recorder not in listeners:
        listeners.append(recorder)


def recorders() -> dict[str, list[Recorder]]:
    return _recorders


def on_attempted(listener: Callable[[list[str]], None]) -> None:
    if listener not in _attempted:
        _attempted.append(listener)


def attempted(ids: list[str]) -> None:
    for listener in _attempted:
        try:
            listener(ids)
        except Exception:  # noqa: BLE001 - a listener's bug must not stop the worker
            log.exception("outbox: an attempt listener failed")


def failed_listeners() -> list[Listener]:
    return list(_failed)


def gone_listeners(channel: str) -> list[Listener]:
    return list(_gone.get(channel, ()))


def set_worker(worker: _Wakeable) -> None:
    global _worker
    _worker = worker


def clear_worker(worker: _Wakeable) -> None:
    """Forget ``worker`` if it is the one woken (another app's worker stays)."""
    global _worker
    if _worker is worker:
        _worker = None


def wake() -> None:
    if _worker is not None:
        _worker.wake()
