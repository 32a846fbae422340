"""The event bus: rooms, emit, emit-on-commit, and the socket.io client manager.

Services and channels publish here; they never see a socket. The socket.io face attaches
its server (``attach``) so events reach connected clients, through the in-process manager
or, with ``REDIS_URL``, Redis pub/sub across processes. Taps (``tap``) see every event in
order, with or without a server: tests record through them.

Rooms:

* ``user:<user_id>`` — every connection of a person (session token).
* ``org:<org_id>`` — admin sessions and API-key connections.
* ``conv:<conversation_id>`` — joined with ``subscribe``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

import engineio
import socketio

from ..kernel.config import Settings
from ..kernel.transactions import on_commit

__all__ = [
    "emit",
    "emit_on_commit",
    "attach",
    "detach",
    "tap",
    "make_manager",
    "user_room",
    "org_room",
    "conv_room",
    "conversation_rooms",
    "Tap",
]

log = logging.getLogger("switchboard.events")

Tap = Callable[[str, list[str], Mapping[str, Any]], None]

# The socket.io server of the running app (one per process), and the taps.
_server: socketio.AsyncServer | None = None
_taps: list[Tap] = []


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def org_room(org_id: str) -> str:
    return f"org:{org_id}"


def conv_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}"


def conversation_rooms(conversation_id: str, owner_id: str) -> list[str]:
    return [conv_room(conversation_id), user_room(owner_id)]


def attach(server: socketio.AsyncServer) -> None:
    global _server
    _server = server


def detach(server: socketio.AsyncServer) -> None:
    global _server
    if _server is server:
        _server = None


def tap(fn: Tap) -> Callable[[], None]:
    """Call ``fn(event, rooms, payload)`` for every event emitted from now on; returns the
    function that removes it."""
    _taps.append(fn)

    def remove() -> None:
        if fn in _taps:
            _taps.remove(fn)

    return remove


async def emit(event: str, rooms: list[str], payload: Mapping[str, Any]) -> None:
    for fn in _taps:
        try:
            fn(event, rooms, payload)
        except Exception:  # noqa: BLE001 - an observer must not undo what was committed
            log.exception("event tap %r failed", fn)
    if _server is not None:
        await _server.emit(event, payload, to=rooms)


async def emit_on_commit(event: str, rooms: list[str], payload: Mapping[str, Any]) -> None:
    """Emit once the surrounding transaction commits (at once outside a transaction)."""
    if _server is None and not _taps:
        return

    async def send() -> None:
        await emit(event, rooms, payload)

    await on_commit(send)


class _InlineManager(socketio.AsyncManager):  # type: ignore[misc]
    """The in-process manager, without a task per recipient.

    The stock manager wraps each recipient's send in a task and waits for them all; a send
    only appends to that connection's queue (its writer task does the socket I/O), so
    awaiting the sends in turn does the same work without creating 1 + N tasks per event.
    The packet is still encoded once per event.
    """

    async def emit(  # type: ignore[no-untyped-def]
        self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None, ignore_queue=False, **kwargs
    ):
        if callback is not None or kwargs or namespace not in self.rooms:
            return await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
            )
        args = list(data) if isinstance(data, tuple) else [data] if data is not None else []
        encoded = self.server.packet_class(socketio.packet.EVENT, namespace=namespace, data=[event] + args).encode()
        eio_packets = [
            engineio.packet.Packet(engineio.packet.MESSAGE, p) for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        for sid, eio_sid in list(self.get_participants(namespace, to or room)):
            if sid in skip:
                continue
            for p in eio_packets:
                try:
                    await self.server._send_eio_packet(eio_sid, p)
                except Exception:  # noqa: BLE001 - one bad connection must not stop the others
                    log.exception("socket.io send to %s failed", sid)


def make_manager(settings: Settings) -> socketio.AsyncManager:
    """Redis pub/sub when ``REDIS_URL`` is set (several processes share rooms), else in-process."""
    if settings.redis_url:
        return socketio.AsyncRedisManager(settings.redis_url)
    return _InlineManager()
