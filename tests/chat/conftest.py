"""Fixtures for the chat tests that need the real server: HTTP and socket.io on loopback."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx
import pytest
import socketio

from app.kernel.config import Settings
from tests.conftest import LiveServer, Orgs, _wait_until_healthy, free_socket, make_orgs
from tests.fakes.webhook_receiver import WebhookReceiver


@asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """Like ``live_server``, but startable more than once in a test (restart scenarios)."""
    from app.serving.server import serve

    sock = free_socket()
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, sock=sock, shutdown_trigger=stop.wait, auto_migrate=False))
    try:
        await _wait_until_healthy(f"http://127.0.0.1:{port}", task)
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, port=port)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        sock.close()


@pytest.fixture
async def live_orgs(live_server: LiveServer) -> Orgs:
    """``orgs`` for tests against the live server (its database; it runs in this process)."""
    return await make_orgs()


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    try:
        yield r
    finally:
        await r.stop()


class SocketClient:
    """A real socket.io client that records every server event it gets."""

    EVENTS = ("message.created", "message.updated", "conversation.created", "typing", "delivery.failed", "message.delta", "agent.error")

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        for name in self.EVENTS:
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.events.append((name, data))

        return record

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def connect(self, url: str, token: str | None) -> "SocketClient":
        auth = {"token": token} if token is not None else None
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
        return self

    async def call(self, event: str, data: Any) -> Any:
        return await self.sio.call(event, data, timeout=5)

    async def settle(self) -> None:
        """A round trip on this connection: every event the server sent it before has been
        recorded when this returns (one connection delivers in order, and the client handles
        each packet in a task started in arrival order)."""
        reply = await self.call("sync", "settle")  # refused at once, without touching anything
        assert reply["error"]["code"] == "validation_failed"

    async def close(self) -> None:
        await self.sio.disconnect()


@pytest.fixture
async def sockets() -> AsyncIterator[Any]:
    made: list[SocketClient] = []

    async def connect(url: str, token: str | None) -> SocketClient:
        client = SocketClient()
        made.append(client)
        return await client.connect(url, token)

    try:
        yield connect
    finally:
        for client in made:
            if client.sio.connected:
                await client.close()
