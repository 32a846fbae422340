"""socket.io: the only module that imports socketio.

Clients connect with ``auth={"token": <session token or API key>}``; anything else is refused.
"""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from .auth import Principal, authenticate_token
from .config import Settings
from .errors import SwitchboardError

__all__ = ["create_realtime", "principal_of"]


def _manager(settings: Settings) -> socketio.AsyncManager | None:
    if settings.redis_url:
        return socketio.AsyncRedisManager(settings.redis_url)
    return None


def create_realtime(app: Quart) -> socketio.AsyncServer:
    settings: Settings = app.config["SETTINGS"]
    sio = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*",
        client_manager=_manager(settings),
    )
    app.extensions["sio"] = sio

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            principal = await authenticate_token(token)
        except SwitchboardError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_body()["error"]) from exc
        await sio.save_session(sid, {"principal": principal})

    return sio


async def principal_of(sio: socketio.AsyncServer, sid: str) -> Principal:
    session = await sio.get_session(sid)
    return session["principal"]  # type: ignore[no-any-return]
