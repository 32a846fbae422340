"""A small MCP server made with the mcp SDK (Streamable HTTP), served by hypercorn on
loopback: the tool source of the agent tests. It records each tool call and the headers
each HTTP request came with."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config
from mcp.server.mcpserver import MCPServer

__all__ = ["ToolServer"]


class ToolServer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        self.url = ""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        server = MCPServer("orders")

        @server.tool(description="Find an order by its number")
        def lookup_order(number: str) -> str:
            self.calls.append(("lookup_order", {"number": number}))
            return f"order {number}: shipped on 2026-12-01"

        @server.tool(description="Delete a record for good")
        def delete_record(record_id: str) -> str:
            self.calls.append(("delete_record", {"record_id": record_id}))
            return f"record {record_id} deleted"

        self._app = server.streamable_http_app(json_response=True, stateless_http=True)

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.headers.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await self._app(scope, receive, send)

    async def start(self) -> "ToolServer":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.loglevel = "WARNING"
        self._task = asyncio.create_task(serve(self._asgi, config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        self.url = f"http://127.0.0.1:{port}/mcp"
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=10)
