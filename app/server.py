"""Serving the ASGI app with hypercorn."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from .asgi import build
from .config import Settings

__all__ = ["serve", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run`` on uvloop when it is installed and enabled: its C event loop and
    transports cut the per-request and per-socket-write cost of the loop itself."""
    if settings.uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)
    return asyncio.run(main)


async def serve(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    auto_migrate: bool = True,
) -> None:
    """Serve until ``shutdown_trigger`` completes (or forever). ``sock`` is a pre-bound
    listening socket, so tests can take an ephemeral port without a race."""
    asgi, _ = build(settings, auto_migrate=auto_migrate)
    config = Config()
    if sock is not None:
        # hypercorn takes ownership of (and closes) the fd it is given: hand it a duplicate,
        # so the caller's socket stays the caller's to close.
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
    else:
        config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.graceful_timeout = 3
    await hypercorn_serve(asgi, config, shutdown_trigger=shutdown_trigger or asyncio.Event().wait)
