"""The one ASGI app: socket.io at /socket.io, everything else to Quart."""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from . import create_app, outbox
from .config import Settings
from .realtime import create_realtime
from .services import agents, typing

__all__ = ["build"]


def build(settings: Settings | None = None, *, auto_migrate: bool = True) -> tuple[Any, Quart]:
    app = create_app(settings, auto_migrate=auto_migrate)
    sio = create_realtime(app)
    outbox.install(app)

    async def encrypt_legacy_secrets(_: Quart) -> None:
        await agents.encrypt_stored_secrets()

    async def stop_typing_timers(_: Quart) -> None:
        await typing.shutdown()

    app.extensions["startup"].append(encrypt_legacy_secrets)
    app.extensions["shutdown"].append(stop_typing_timers)
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io"), app
