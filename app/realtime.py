"""socket.io: the only module that imports socketio.

Clients connect with ``auth={"token": <session token or API key>}``; anything else is refused.

Rooms:

* ``user:<user_id>`` — every connection of a person (session token). Events of that person's
  own conversations reach it, so all their devices see every message, their own included.
* ``org:<org_id>`` — admin sessions and API-key connections: ``conversation.created`` for
  every conversation of the organization.
* ``conv:<conversation_id>`` — joined with ``subscribe``, left with ``unsubscribe``.

Server -> client: ``message.created``, ``conversation.created``, ``typing``,
``delivery.failed``. Client -> server (the return value is the ack): ``subscribe``,
``unsubscribe``, ``message.send``, ``sync``. Failed acks carry the REST error envelope.

Services never import socketio: they call ``emit_on_commit(event, rooms, payload)``.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import engineio
import socketio
from quart import Quart

from .auth import Principal, authenticate_token
from .config import Settings
from .errors import SwitchboardError, ValidationFailed
from .transactions import on_commit

__all__ = [
    "create_realtime",
    "principal_of",
    "emit",
    "emit_on_commit",
    "conversation_rooms",
    "user_room",
    "org_room",
]

log = logging.getLogger("switchboard.realtime")

MAX_SEQ = 2**63 - 1

# The server of the running app (one per process). None when the app runs without socket.io
# (e.g. the in-process test client): emits are then no-ops.
_server: socketio.AsyncServer | None = None


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def org_room(org_id: str) -> str:
    return f"org:{org_id}"


def conv_room(conversation_id: str) -> str:
    return f"conv:{conversation_id}"


def conversation_rooms(conversation_id: str, owner_id: str) -> list[str]:
    return [conv_room(conversation_id), user_room(owner_id)]


async def emit(event: str, rooms: list[str], payload: dict[str, Any]) -> None:
    if _server is not None:
        await _server.emit(event, payload, to=rooms)


async def emit_on_commit(event: str, rooms: list[str], payload: dict[str, Any]) -> None:
    """Emit once the surrounding transaction commits (at once outside a transaction)."""
    if _server is None:
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


def _manager(settings: Settings) -> socketio.AsyncManager:
    if settings.redis_url:
        return socketio.AsyncRedisManager(settings.redis_url)
    return _InlineManager()


Handler = Callable[[Principal, dict[str, Any]], Awaitable[dict[str, Any]]]


def _error_ack(exc: SwitchboardError) -> dict[str, Any]:
    return exc.to_body()


def create_realtime(app: Quart) -> socketio.AsyncServer:
    settings: Settings = app.config["SETTINGS"]
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*",
        client_manager=_manager(settings),
    )
    app.extensions["sio"] = sio

    async def _start(_: Quart) -> None:
        global _server
        _server = sio

    async def _stop(_: Quart) -> None:
        global _server
        if _server is sio:
            _server = None

    app.extensions["startup"].append(_start)
    app.extensions["shutdown"].append(_stop)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = await authenticate_token(token)
        except SwitchboardError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_body()["error"]) from exc
        await sio.save_session(sid, {"principal": principal})
        if principal.kind == "session" and principal.user is not None:
            await sio.enter_room(sid, user_room(principal.user.id))
        if principal.sees_all_conversations:
            await sio.enter_room(sid, org_room(principal.org_id))

    def handler(name: str) -> Callable[[Handler], Handler]:
        """Register ``fn(principal, data) -> ack``; errors become the error envelope."""

        def register(fn: Handler) -> Handler:
            async def on_event(sid: str, data: Any = None) -> dict[str, Any]:
                try:
                    if not isinstance(data, dict):
                        raise ValidationFailed("Event data must be an object.", details={"data": ["must be an object"]})
                    return await fn(await principal_of(sio, sid), {**data, "_sid": sid})
                except SwitchboardError as exc:
                    return _error_ack(exc)
                except Exception:  # noqa: BLE001 - never a traceback to the client
                    log.exception("socket event %s failed", name)
                    return {"error": {"code": "internal_error", "message": "Internal server error.", "details": None}}

            sio.on(name, on_event)
            return fn

        return register

    from .services import conversations, messages
    from .api.chat_shapes import message_json

    def _str(data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise ValidationFailed(details={key: ["is required and must be a string"]})
        return value

    @handler("subscribe")
    async def subscribe(principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        conv = await conversations.get_conversation(principal, _str(data, "conversation_id"))
        await sio.enter_room(data["_sid"], conv_room(conv.id))
        return {"success": True, "conversation_id": conv.id, "last_seq": conv.last_seq}

    @handler("unsubscribe")
    async def unsubscribe(principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        conversation_id = _str(data, "conversation_id")
        await sio.leave_room(data["_sid"], conv_room(conversation_id))
        return {"success": True, "conversation_id": conversation_id}

    @handler("message.send")
    async def message_send(principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        content = data.get("content")
        if not isinstance(content, str):
            raise ValidationFailed(details={"content": ["is required and must be a string"]})
        message = await messages.send_user_message(principal, _str(data, "conversation_id"), content)
        return {"success": True, "message": message_json(message)}

    @handler("sync")
    async def sync(principal: Principal, data: dict[str, Any]) -> dict[str, Any]:
        after_seq = data.get("after_seq", 0)
        # seqs are 64-bit columns: a bigger number would fail in the driver, not here.
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or not 0 <= after_seq <= MAX_SEQ:
            raise ValidationFailed(details={"after_seq": [f"must be an integer between 0 and {MAX_SEQ}"]})
        page = await messages.list_messages(
            principal, _str(data, "conversation_id"), after_seq=after_seq, limit=messages.SYNC_LIMIT
        )
        return {
            "success": True,
            "conversation_id": data["conversation_id"],
            "messages": [message_json(m) for m in page.messages],
            "has_more": page.has_more,
            "last_seq": page.last_seq,
        }

    return sio


async def principal_of(sio: socketio.AsyncServer, sid: str) -> Principal:
    session = await sio.get_session(sid)
    return session["principal"]  # type: ignore[no-any-return]
