"""The durable outbox: every delivery that leaves the machine, for every channel.

``writer`` is the one place rows are written (in the caller's transaction), ``worker``
claims them and hands each to its channel's adapter (``channels/``), ``holds`` pauses a
group of items, ``registry`` is where services plug in resolvers and listeners, ``attempts``
waits for items' first attempts.
"""

from __future__ import annotations

from .attempts import wait_attempted
from .holds import hold, release
from .registry import Recipient, on_attempted, on_failed, on_gone, on_recorded, register_resolver, wake
from .worker import OutboxWorker, backoff_seconds, cancel, install
from .writer import enqueue, enqueue_rows, row, wake_after_commit, write, write_many

__all__ = [
    "enqueue",
    "enqueue_rows",
    "row",
    "write",
    "write_many",
    "on_attempted",
    "on_recorded",
    "wake_after_commit",
    "wake",
    "wait_attempted",
    "hold",
    "release",
    "cancel",
    "Recipient",
    "register_resolver",
    "on_failed",
    "on_gone",
    "OutboxWorker",
    "install",
    "backoff_seconds",
]
