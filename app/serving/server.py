"""Serving the ASGI app with hypercorn."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from itertools import chain
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from .asgi import build
from ..kernel.config import Settings
from ..kernel.db import close_db

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


def _coalesce_response_head() -> None:
    """Send an HTTP/1.1 response's head and body in one socket write.

    hypercorn writes the head when the app starts the response and the body when it arrives:
    two send() calls (and two segments for the client to read) per response. A response of
    known length (everything but a stream) keeps its encoded head until the body comes and
    writes both at once; anything else flushes it first, so streams start as before.
    """
    import h11
    from hypercorn.events import RawData
    from hypercorn.protocol import h11 as h11_protocol
    from hypercorn.protocol.events import Body, Response

    protocol = h11_protocol.H11Protocol
    if getattr(protocol.stream_send, "coalesces_head", False):
        return
    stream_send = protocol.stream_send

    async def coalescing_stream_send(self: Any, event: Any) -> None:
        head: bytes | None = self.__dict__.pop("_pending_head", None)
        if head is not None:
            if isinstance(event, Body):
                await self.send(RawData(data=head + self.connection.send(h11.Data(data=event.data))))
                return
            await self.send(RawData(data=head))
        elif (
            isinstance(event, Response)
            and event.status_code >= 200
            and any(name == b"content-length" for name, _ in event.headers)
        ):
            headers = list(chain(event.headers, self.config.response_headers("h11")))
            if self.keep_alive_requests >= self.config.keep_alive_max_requests:
                headers.append((b"connection", b"close"))
            try:
                self._pending_head = self.connection.send(h11.Response(headers=headers, status_code=event.status_code))
            except h11.LocalProtocolError:
                if self.connection.their_state != h11.ERROR:
                    raise
            return
        await stream_send(self, event)

    coalescing_stream_send.coalesces_head = True  # type: ignore[attr-defined]
    protocol.stream_send = coalescing_stream_send  # type: ignore[method-assign]


async def _freeze_gc(_: Any) -> None:
    """Once started, move everything alive (modules, the app, models' metadata: ~95,000
    objects) out of the cyclic collector's reach. Otherwise every full collection walks them
    all: 50-60 ms pauses under load, straight into the latency tail."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    auto_migrate: bool = True,
    freeze_gc: bool = False,
) -> None:
    """Serve until ``shutdown_trigger`` completes (or forever). ``sock`` is a pre-bound
    listening socket, so tests can take an ephemeral port without a race. ``freeze_gc`` is
    for a process that only serves (the CLI), not for one that starts servers repeatedly."""
    _coalesce_response_head()
    if sock is not None:
        # where this server really listens: the links it makes to itself (file URLs) say so
        host, port = sock.getsockname()[:2]
        settings = settings.with_overrides(host=host, port=port)
    asgi, app = build(settings, auto_migrate=auto_migrate)
    if freeze_gc:
        app.extensions["startup"].append(_freeze_gc)
    config = Config()
    if sock is not None:
        # hypercorn takes ownership of (and closes) the fd it is given: hand it a duplicate,
        # so the caller's socket stays the caller's to close.
        config.bind = [f"fd://{os.dup(sock.fileno())}"]
    else:
        config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.graceful_timeout = 3
    try:
        await hypercorn_serve(asgi, config, shutdown_trigger=shutdown_trigger or asyncio.Event().wait)
    except Exception:
        # hypercorn gave up after (or while) the app started, e.g. it could not bind: the
        # app's shutdown never runs, so close the database here. aiosqlite's connection
        # thread would otherwise keep the failed process alive.
        await close_db()
        raise
