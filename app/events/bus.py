"""The event bus: rooms, emit, emit-on-commit, and the socket.io client manager.

Services and channels publish here; they never see a socket. The socket.io face attaches
its server (``attach``) so events reach connected clients, through the in-process manager
or, with ``REDIS_URL``, Redis pub/sub across processes. Taps (``tap``) see every event in
order, with or without a server: tests record through them. Listeners (``listen``) hear one
event as emitted by any process: this one's at once, the others' as Redis brings them (what
a waiting request needs when its answer may be stored by another gateway process).

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
    "listen",
    "make_manager",
    "user_room",
    "org_room",
    "conv_room",
    "conversation_rooms",
    "Tap",
    "Listener",
]

log = logging.getLogger("switchboard.events")

Tap = Callable[[str, list[str], Mapping[str, Any]], None]
Listener = Callable[[Mapping[str, Any]], None]

# The socket.io server of the running app (one per process), the taps, the listeners by event.
_server: socketio.AsyncServer | None = None
_taps: list[Tap] = []
_listeners: dict[str, list[Listener]] = {}


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
    if not server.manager_initialized:
        # Now, not at the first client connection: with Redis, other processes' events must
        # reach this process's listeners (a request waiting for a reply) with no client here.
        server.manager_initialized = True
        server.manager.initialize()


def detach(server: socketio.AsyncServer) -> None:
    global _server
    if _server is server:
        _server = None
    if isinstance(server.manager, _RedisManager):
        server.manager.stop_listening()


def tap(fn: Tap) -> Callable[[], None]:
    """Call ``fn(event, rooms, payload)`` for every event emitted from now on; returns the
    function that removes it."""
    _taps.append(fn)

    def remove() -> None:
        if fn in _taps:
            _taps.remove(fn)

    return remove


def listen(event: str, fn: Listener) -> Callable[[], None]:
    """Call ``fn(payload)`` for every ``event`` any process emits from now on (with Redis;
    without it, this process is the only one); returns the function that removes it."""
    _listeners.setdefault(event, []).append(fn)

    def remove() -> None:
        if fn in _listeners.get(event, ()):
            _listeners[event].remove(fn)

    return remove


def _heard(event: str, payload: Mapping[str, Any]) -> None:
    for fn in _listeners.get(event, ()):
        try:
            fn(payload)
        except Exception:  # noqa: BLE001 - an observer must not undo what was committed
            log.exception("event listener %r failed", fn)


async def emit(event: str, rooms: list[str], payload: Mapping[str, Any]) -> None:
    for fn in _taps:
        try:
            fn(event, rooms, payload)
        except Exception:  # noqa: BLE001 - an observer must not undo what was committed
            log.exception("event tap %r failed", fn)
    _heard(event, payload)
    if _server is not None:
        await _server.emit(event, payload, to=rooms)


async def emit_on_commit(event: str, rooms: list[str], payload: Mapping[str, Any]) -> None:
    """Emit once the surrounding transaction commits (at once outside a transaction)."""
    if _server is None and not _taps and not _listeners.get(event):
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


class _RedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """Redis pub/sub; another process's events also reach this process's listeners."""

    def stop_listening(self) -> None:
        listener = getattr(self, "thread", None)  # the task reading the channel, once initialized
        if listener is not None:
            listener.cancel()

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if message.get("host_id") != self.host_id and isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
            _heard(str(message.get("event")), data[0])
        await super()._handle_emit(message)


def make_manager(settings: Settings) -> socketio.AsyncManager:
    """Redis pub/sub when ``REDIS_URL`` is set (several processes share rooms), else in-process."""
    if settings.redis_url:
        return _RedisManager(settings.redis_url)
    return _InlineManager()
