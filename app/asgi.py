"""The one ASGI app: socket.io at /socket.io, everything else to Quart."""

from __future__ import annotations

from typing import Any

import socketio
from quart import Quart

from . import create_app
from .config import Settings
from .realtime import create_realtime

__all__ = ["build"]


def build(settings: Settings | None = None, *, auto_migrate: bool = True) -> tuple[Any, Quart]:
    app = create_app(settings, auto_migrate=auto_migrate)
    sio = create_realtime(app)
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io"), app
