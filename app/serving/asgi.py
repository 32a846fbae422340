"""The one ASGI app: the MCP server at /mcp/v1, local file URLs at /files/blob/, socket.io
at /socket.io, everything else to Quart; the outbox worker and the background passes run
beside them."""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from .. import outbox
from ..faces import blobs
from ..faces.mcp import PATH as MCP_PATH
from ..faces.mcp import McpEndpoint
from ..faces.socket import create_socket_server
from ..kernel.config import Settings
from ..services import agent_runner, agents, files, interactive, push, typing_indicators
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

    # Background passes: interactive expiries, bulk pushes still to fan out to devices, and
    # file objects nobody will ask for again.
    passes = [interactive.ExpiryClock(), push.Fanout(), files.Sweeper()]

    async def start_passes(_: Quart) -> None:
        for p in passes:
            p.start()

    async def stop_passes(_: Quart) -> None:
        for p in passes:
            await p.stop()

    runner = agent_runner.AgentRunner(app.config["SETTINGS"])
    mcp = McpEndpoint(app.config["SETTINGS"], app.extensions["rate_limits"])

    async def start_mcp(_: Quart) -> None:
        await mcp.start()

    async def stop_mcp(_: Quart) -> None:
        await mcp.stop()

    async def start_runner(_: Quart) -> None:
        runner.start()

    async def stop_runner(_: Quart) -> None:
        await runner.stop()  # replies being written are kept as "stopped"

    app.extensions["startup"] += [encrypt_legacy_secrets, start_passes, start_runner, start_mcp]
    # Shutdown hooks run last-added first: the runner stops (storing replies in progress)
    # before the timers and passes it uses.
    app.extensions["shutdown"] += [stop_typing_timers, stop_passes, stop_runner, stop_mcp]
    main = socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")

    async def dispatch(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == MCP_PATH or path.startswith(MCP_PATH + "/"):
                return await mcp(scope, receive, send)
            if path.startswith(blobs.BLOB_PATH):
                return await blobs.handle(scope, receive, send)
        await main(scope, receive, send)

    return dispatch, app
