"""The one ASGI app: socket.io at /socket.io, everything else to Quart, and the outbox
worker running beside them."""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from .. import outbox
from ..faces.socket import create_socket_server
from ..kernel.config import Settings
from ..services import agents, interactive, typing_indicators
from .app import create_app

__all__ = ["build"]


def build(settings: Settings | None = None, *, auto_migrate: bool = True) -> tuple[Any, Quart]:
    app = create_app(settings, auto_migrate=auto_migrate)
    sio = create_socket_server(app)
    outbox.install(app)

    async def encrypt_legacy_secrets(_: Quart) -> None:
        await agents.encrypt_stored_secrets()

    async def stop_typing_timers(_: Quart) -> None:
        await typing_indicators.shutdown()

    clock = interactive.ExpiryClock()

    async def start_expiry_clock(_: Quart) -> None:
        clock.start()

    async def stop_expiry_clock(_: Quart) -> None:
        await clock.stop()

    app.extensions["startup"] += [encrypt_legacy_secrets, start_expiry_clock]
    app.extensions["shutdown"] += [stop_typing_timers, stop_expiry_clock]
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io"), app
