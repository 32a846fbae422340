"""The one ASGI app: socket.io at /socket.io, everything else to Quart, and the outbox
worker running beside them."""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from .. import outbox
from ..faces.socket import create_socket_server
from ..kernel.config import Settings
from ..services import agent_runner, agents, interactive, push, typing_indicators
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

    # Background passes: interactive expiries, and bulk pushes still to fan out to devices.
    passes = [interactive.ExpiryClock(), push.Fanout()]

    async def start_passes(_: Quart) -> None:
        for p in passes:
            p.start()

    async def stop_passes(_: Quart) -> None:
        for p in passes:
            await p.stop()

    runner = agent_runner.AgentRunner(app.config["SETTINGS"])

    async def start_runner(_: Quart) -> None:
        runner.start()

    async def stop_runner(_: Quart) -> None:
        await runner.stop()  # replies being written are kept as "stopped"

    app.extensions["startup"] += [encrypt_legacy_secrets, start_passes, start_runner]
    # Shutdown hooks run last-added first: the runner stops (storing replies in progress)
    # before the timers and passes it uses.
    app.extensions["shutdown"] += [stop_typing_timers, stop_passes, stop_runner]
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io"), app
