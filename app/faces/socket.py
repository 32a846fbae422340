"""The socket.io face: connect auth and client events; each parses, authorizes, calls a
service and acks. Events to clients go out through ``app.events.bus``, never from here.

Clients connect with ``auth={"token": <session token or API key>}``; anything else is refused.
A person's connections join ``user:<id>``; admin sessions and API keys also join
``org:<id>``; ``subscribe`` joins ``conv:<id>``.

Server -> client: ``message.created``, ``message.updated``, ``conversation.created``, ``typing``,
``delivery.failed``. Client -> server (the return value is the ack): ``subscribe``,
``unsubscribe``, ``message.send``, ``interactive.respond``, ``sync``, ``generation.stop``. Failed acks carry the REST error envelope.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import socketio
from quart import Quart

from ..events import bus
from ..events.payloads import message_json
from ..kernel.auth import Principal, authenticate_token
from ..kernel.config import Settings
from ..kernel.errors import InternalError, SwitchboardError, ValidationFailed, client_error
from ..kernel.storable import check_storable
from ..services import agent_runner, conversations, interactive, messages

__all__ = ["create_socket_server", "MAX_SEQ"]

log = logging.getLogger("switchboard.socket")

MAX_SEQ = 2**63 - 1

Handler = Callable[[Principal, str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValidationFailed(details={key: ["is required and must be a string"]})
    return value


def _link_base(environ: dict[str, Any]) -> str | None:
    """The address the client reached us at, for links made for it (file URLs)."""
    host = environ.get("HTTP_HOST")
    scheme = {"ws": "http", "wss": "https"}.get(environ.get("wsgi.url_scheme", "http"), environ.get("wsgi.url_scheme", "http"))
    return f"{scheme}://{host}" if host else None


def create_socket_server(app: Quart) -> socketio.AsyncServer:
    """The socket.io server of ``app``, attached to the bus while the app serves."""
    settings: Settings = app.config["SETTINGS"]
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", client_manager=bus.make_manager(settings))
    app.extensions["sio"] = sio
    limits = app.extensions["rate_limits"]

    async def start(_: Quart) -> None:
        bus.attach(sio)

    async def stop(_: Quart) -> None:
        bus.detach(sio)

    app.extensions["startup"].append(start)
    app.extensions["shutdown"].append(stop)

    async def principal_of(sid: str) -> Principal:
        return (await sio.get_session(sid))["principal"]  # type: ignore[no-any-return]

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = await authenticate_token(token)
        except SwitchboardError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_body()["error"]) from exc
        await sio.save_session(sid, {"principal": principal, "link_base": _link_base(environ)})
        if principal.kind == "session" and principal.user is not None:
            await sio.enter_room(sid, bus.user_room(principal.user.id))
        if principal.sees_all_conversations:
            await sio.enter_room(sid, bus.org_room(principal.org_id))

    def handler(name: str) -> Callable[[Handler], Handler]:
        """Register ``fn(principal, sid, data) -> ack``; errors become the error envelope."""

        def register(fn: Handler) -> Handler:
            async def on_event(sid: str, data: Any = None) -> dict[str, Any]:
                try:
                    if not isinstance(data, dict):
                        raise ValidationFailed("Event data must be an object.", details={"data": ["must be an object"]})
                    check_storable(data, what="Event data")
                    principal = await principal_of(sid)
                    # Each event counts against its key's or person's allowance, as a request would.
                    quota = await limits.count_principal(principal)
                    refused = quota.refusal() if quota is not None else None
                    if refused is not None:
                        raise refused
                    return await fn(principal, sid, data)
                except Exception as exc:  # noqa: BLE001 - never a traceback to the client
                    known = client_error(exc)
                    if known is None:
                        log.exception("socket event %s failed", name)
                    return dict((known or InternalError("Internal server error.")).to_body())

            sio.on(name, on_event)
            return fn

        return register

    @handler("subscribe")
    async def subscribe(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        conv = await conversations.get_conversation(principal, _str(data, "conversation_id"))
        await sio.enter_room(sid, bus.conv_room(conv.id))
        return {"success": True, "conversation_id": conv.id, "last_seq": conv.last_seq}

    @handler("unsubscribe")
    async def unsubscribe(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        conversation_id = _str(data, "conversation_id")
        await sio.leave_room(sid, bus.conv_room(conversation_id))
        return {"success": True, "conversation_id": conversation_id}

    @handler("message.send")
    async def message_send(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        content = data.get("content")
        if not isinstance(content, str):
            raise ValidationFailed(details={"content": ["is required and must be a string"]})
        message = await messages.send_user_message(
            principal, _str(data, "conversation_id"), content, attachments=data.get("attachments"),
            link_base=(await sio.get_session(sid)).get("link_base"),
        )
        return {"success": True, "message": message_json(message)}

    @handler("interactive.respond")
    async def interactive_respond(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = {k: v for k, v in data.items() if k != "message_id"}
        message, interaction = await interactive.respond(principal, _str(data, "message_id"), answer)
        return {"success": True, "message": message_json(message, interaction)}

    @handler("sync")
    async def sync(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        after_seq = data.get("after_seq", 0)
        # seqs are 64-bit columns: a bigger number would fail in the driver, not here.
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or not 0 <= after_seq <= MAX_SEQ:
            raise ValidationFailed(details={"after_seq": [f"must be an integer between 0 and {MAX_SEQ}"]})
        conversation_id = _str(data, "conversation_id")
        page = await messages.list_messages(
            principal, conversation_id, after_seq=after_seq, limit=messages.SYNC_LIMIT,
            link_base=(await sio.get_session(sid)).get("link_base"),
        )
        out: dict[str, Any] = {
            "success": True,
            "conversation_id": conversation_id,
            "messages": [message_json(m, page.interactions.get(m.id)) for m in page.messages],
            "has_more": page.has_more,
            "last_seq": page.last_seq,
        }
        partial = await agent_runner.in_progress(principal, conversation_id)
        if partial is not None:  # a reply being written: its text so far; deltas continue
            out["generating"] = {"message_id": partial[0], "content": partial[1]}
        return out

    @handler("generation.stop")
    async def generation_stop(principal: Principal, sid: str, data: dict[str, Any]) -> dict[str, Any]:
        stopped = await agent_runner.stop_generation(principal, _str(data, "conversation_id"))
        return {"success": True, "stopped": stopped}

    return sio
