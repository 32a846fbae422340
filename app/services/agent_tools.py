"""A custom agent's tools: the tools of its MCP servers, through the official mcp client
(Streamable HTTP), for the length of one reply.

Each server is connected once per reply (its headers, stored sealed, sent again), listed,
and kept open while the model calls its tools; a server that cannot be reached is left out
and said so in the reply's metadata, rather than failing the reply. A tool name offered by
two servers is the first one's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from providers.base import Tool

from ..models.chat import Agent
from .agent_config import mcp_headers

__all__ = ["Toolbox", "open_toolbox", "MAX_RESULT_CHARS"]

log = logging.getLogger("switchboard.agents")

MAX_RESULT_CHARS = 20_000


class _Server:
    """One MCP server for the length of a reply, in a task of its own: the mcp client's
    anyio scopes are entered and left there, so a server failing cannot cancel the reply."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        self.url, self._headers, self._timeout = url, headers, timeout
        self._requests: asyncio.Queue[tuple[str, dict[str, Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> list[Any]:
        """Connect and list its tools (``ConnectionError`` when it cannot be reached)."""
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp-{self.url}")
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(ready)
        except TimeoutError:
            await self.close()
            raise ConnectionError(f"no answer within {self._timeout:g} s") from None
        except BaseException:  # stopped while connecting: leave nothing running
            await asyncio.shield(self.close())
            raise

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._requests.put((name, arguments, done))
        return await done

    async def close(self) -> None:
        if self._task is None:
            return
        await self._requests.put(None)
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(self._task)
        except (TimeoutError, Exception):  # noqa: BLE001 - a server hanging up at the end changes nothing
            self._task.cancel()

    async def _serve(self, ready: asyncio.Future[list[Any]]) -> None:
        try:
            async with httpx2.AsyncClient(headers=self._headers, timeout=self._timeout) as http:
                async with streamable_http_client(self.url, http_client=http) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        await session.initialize()
                        listed = await session.list_tools()
                        ready.set_result(list(listed.tools))
                        while (request := await self._requests.get()) is not None:
                            name, arguments, done = request
                            try:
                                done.set_result(await session.call_tool(name, arguments))
                            except Exception as exc:  # noqa: BLE001 - the caller reports it
                                if not done.done():
                                    done.set_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - anything, cancellation included, means unreachable
            if not ready.done():
                ready.set_exception(ConnectionError(_reason(exc)))
            while not self._requests.empty():  # calls queued meanwhile get the same answer
                request = self._requests.get_nowait()
                if request is not None and not request[2].done():
                    request[2].set_exception(ConnectionError(_reason(exc)))


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


@dataclass
class Toolbox:
    tools: list[Tool] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # server URLs left out, with why
    _servers: dict[str, _Server] = field(default_factory=dict)  # tool name -> its server
    _open: list[_Server] = field(default_factory=list)
    _approval: dict[str, bool] = field(default_factory=dict)
    timeout: float = 30.0

    def needs_approval(self, name: str) -> bool:
        return self._approval.get(name, False)

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
        """(the result as text, whether it is an error)."""
        server = self._servers.get(name)
        if server is None:
            return f"there is no tool named {name!r}", True
        try:
            async with asyncio.timeout(self.timeout):
                result = await server.call(name, arguments)
        except TimeoutError:
            return f"the tool {name!r} did not answer within {self.timeout:g} s", True
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the model's to hear about
            return f"the tool {name!r} failed: {exc}", True
        parts = []
        for item in result.content or []:
            text = getattr(item, "text", None)
            parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')}]")
        if not parts and result.structured_content is not None:
            parts.append(json.dumps(result.structured_content))
        text = "\n".join(parts)
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + " …(cut)"
        return text, bool(result.is_error)

    async def aclose(self) -> None:
        for server in self._open:
            await server.close()


async def open_toolbox(agent: Agent, *, timeout: float = 30.0) -> Toolbox:
    """Connect to every MCP server of the agent and list their tools."""
    box = Toolbox(timeout=timeout)
    for config in (agent.config or {}).get("mcp_servers") or []:
        server = _Server(str(config.get("url")), mcp_headers(agent.id, config), timeout)
        try:
            listed = await server.open()
        except ConnectionError as exc:  # one server down must not silence the agent
            log.warning("agents: MCP server %s of %s unreachable: %s", server.url, agent.id, exc)
            box.unreachable.append(f"{server.url}: {exc}")
            continue
        except BaseException:  # stopped meanwhile: close the servers already open
            await asyncio.shield(box.aclose())
            raise
        box._open.append(server)
        approval = config.get("require_approval", False)
        for tool in listed:
            if tool.name in box._servers:
                continue
            box._servers[tool.name] = server
            box._approval[tool.name] = approval is True or (isinstance(approval, list) and tool.name in approval)
            box.tools.append(Tool(tool.name, tool.description or "", dict(tool.input_schema or {"type": "object"})))
    return box
