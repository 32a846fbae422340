"""The MCP tools' registry: each tool is a name, a description, an argument model (from
``faces.arguments``, plus the ids a REST route takes from its path) and a function that
calls the same service as the REST route and returns the same shape.

A failure is a tool result with ``isError`` and the contract's error envelope as its text
(a missing scope names the scope), never a protocol error."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson
from pydantic import BaseModel, create_model
from pydantic import Field as Arg

from ...kernel.auth import Principal
from ...kernel.config import Settings
from ...kernel.errors import InternalError, NotFound, client_error
from ...kernel.storable import check_storable
from ..arguments import Args, checked

__all__ = ["Tool", "TOOLS", "tool", "with_ids", "ids_only", "listing", "call", "configure", "settings", "link_base"]

log = logging.getLogger("switchboard.mcp")

Run = Callable[[Principal, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    args: type[BaseModel]
    run: Run
    read_only: bool

    def describe(self) -> types.Tool:
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=self.args.model_json_schema(),
            annotations=types.ToolAnnotations(read_only_hint=self.read_only, destructive_hint=self.name.endswith("_delete")),
        )


TOOLS: dict[str, Tool] = {}
_settings = Settings()
# The address the MCP client reached us at (for links made for it), set for each call.
_link_base: ContextVar[str | None] = ContextVar("mcp_link_base", default=None)


def link_base() -> str | None:
    return _link_base.get()


def configure(value: Settings) -> None:
    global _settings
    _settings = value


def settings() -> Settings:
    return _settings


def tool(name: str, description: str, args: type[BaseModel], *, read_only: bool = False) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        TOOLS[name] = Tool(name, description, args, run, read_only)
        _listed.clear()
        return run

    return register


_ID_HELP = {
    "database_id": "Database display id (db_...).",
    "table_id": "Table display id (tb_...).",
    "field_id": "Field display id (fd_...).",
    "entry_id": "Entry display id (en_...).",
    "agent_id": "Agent id (agt_...).",
    "conversation_id": "Conversation id (conv_...).",
    "message_id": "Message id (msg_...).",
}


def with_ids(name: str, base: type[BaseModel], *ids: str) -> type[BaseModel]:
    """``base`` (a REST body's model) plus the ids its route takes from the path."""
    extra: dict[str, Any] = {i: (str, Arg(description=_ID_HELP.get(i, ""))) for i in ids}
    return create_model(name, __base__=base, **extra)


def ids_only(name: str, *ids: str) -> type[BaseModel]:
    return with_ids(name, Args, *ids)


# tools/list, built once: generating the 34 JSON Schemas takes ~12 ms, and the registry is
# fixed once the tool modules are imported.
_listed: list[types.Tool] = []


def listing() -> list[types.Tool]:
    if not _listed:
        _listed.extend(t.describe() for t in TOOLS.values())
    return _listed


def _text(result: Any) -> str:
    return orjson.dumps(result, default=str).decode()


async def call(
    principal: Principal, name: str, arguments: dict[str, Any] | None, link: str | None = None
) -> types.CallToolResult:
    found = TOOLS.get(name)
    token = _link_base.set(link)
    try:
        if found is None:
            raise NotFound(f"No tool named {name!r}.", code="unknown_tool")
        check_storable(arguments, what="Tool arguments")  # the rule every face applies
        result = await found.run(principal, checked(found.args, arguments or {}))
    except Exception as exc:  # noqa: BLE001 - a tool's failure is its caller's error result, never the server's
        known = client_error(exc)
        if known is None:
            log.exception("MCP tool %s failed", name)
        body = (known or InternalError()).to_body()
        return types.CallToolResult(content=[types.TextContent(type="text", text=_text(body))], is_error=True)
    finally:
        _link_base.reset(token)
    structured = result if isinstance(result, dict) else {"result": result}
    return types.CallToolResult(content=[types.TextContent(type="text", text=_text(result))], structured_content=structured)
