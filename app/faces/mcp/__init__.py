"""The MCP server at ``/mcp/v1``: Streamable HTTP, stateless, built on the official ``mcp``
SDK's low-level server (so each tool's input schema is exactly its argument model's).

Authentication is the REST API's: ``Authorization: Bearer ak_...`` (or ``x-api-key``); any
other caller gets 401 in the contract's envelope before the protocol starts. Requests count
against the key's rate limit as on REST (the same budget, the same X-RateLimit-* headers).
Answers are JSON; a client whose Accept header puts ``text/event-stream`` first gets an SSE
stream."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from ...kernel.auth import Principal, authenticate_token, token_from_headers
from ...kernel.config import Settings
from ...kernel.errors import AuthenticationRequired, MethodNotAllowed, SwitchboardError
from ...kernel.ratelimit import Quota, RateLimits
from . import chat_tools, data_tools  # noqa: F401 - registers the tools
from .tools import call, configure, listing

__all__ = ["McpEndpoint", "PATH"]

PATH = "/mcp/v1"
_PRINCIPAL = "switchboard.principal"
_INSTRUCTIONS = (
    "Switchboard: read and write the organization's databases, tables, fields and entries; read conversations, "
    "send messages as an agent, ask people for approval and wait for the answer, push notifications."
)


def _principal_of(ctx: Any) -> Principal:
    request = getattr(ctx, "request", None)
    principal = request.scope.get(_PRINCIPAL) if request is not None else None
    if principal is None:  # the endpoint authenticates every request before the protocol runs
        raise AuthenticationRequired()
    return principal  # type: ignore[no-any-return]


async def _list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=listing())


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    request = getattr(ctx, "request", None)
    link = str(request.base_url).rstrip("/") if request is not None else None
    return await call(_principal_of(ctx), params.name, params.arguments, link)


class McpEndpoint:
    """The ASGI endpoint, with the SDK's session managers started and stopped by the app."""

    def __init__(self, settings: Settings, limits: RateLimits) -> None:
        configure(settings)
        self.limits = limits
        self.server: Server[Any] = Server(
            "switchboard", version="1.0", instructions=_INSTRUCTIONS, on_list_tools=_list_tools, on_call_tool=_call_tool
        )
        # Bodies are capped like the REST API's (413 past the limit).
        limit = settings.max_body_bytes
        self._json = StreamableHTTPSessionManager(self.server, json_response=True, stateless=True, max_request_body_size=limit)
        self._sse = StreamableHTTPSessionManager(self.server, json_response=False, stateless=True, max_request_body_size=limit)
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        await self._stack.enter_async_context(self._json.run())
        await self._stack.enter_async_context(self._sse.run())

    async def stop(self) -> None:
        await self._stack.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            if scope["method"] != "POST":  # stateless: no stream to open (GET) or session to end (DELETE)
                raise MethodNotAllowed("The MCP endpoint takes POST.", headers={"Allow": "POST"})
            principal = await authenticate_token(token_from_headers(headers))
            if principal.kind != "api_key":
                raise AuthenticationRequired()
        except SwitchboardError as exc:
            quota = None
            if self.limits.counts_requests:  # without a key, counted by client address
                quota = await self.limits.count_address(self.limits.addresses.of_scope(scope))
            refused = quota.refusal() if quota is not None else None
            await _refuse(send, refused or exc, quota)
            return
        if self.limits.counts_requests:
            quota = await self.limits.count_principal(principal)
            if quota is not None:
                refused = quota.refusal()
                if refused is not None:
                    await _refuse(send, refused, quota)
                    return
                send = _stamped(send, quota)
        scope = {**scope, _PRINCIPAL: principal}
        accept = [part.split(";")[0].strip().lower() for part in headers.get("accept", "").split(",")]
        manager = self._json
        if accept and accept[0] == "text/event-stream":
            manager = self._sse
            if "application/json" not in accept:  # the transport wants both named
                scope["headers"] = [
                    (k, v) for k, v in scope["headers"] if k.lower() != b"accept"
                ] + [(b"accept", b"text/event-stream, application/json")]
        await manager.handle_request(scope, receive, send)


def _stamped(send: Any, quota: Quota) -> Any:
    """``send`` with the quota's X-RateLimit-* headers added to the response's start."""
    extra = [(k.lower().encode(), v.encode()) for k, v in quota.headers()]

    async def send_stamped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return send_stamped


async def _refuse(send: Any, exc: SwitchboardError, quota: Quota | None = None) -> None:
    body = json.dumps(exc.to_body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    named = {**dict(quota.headers() if quota is not None else ()), **exc.headers}
    headers += [(k.lower().encode(), v.encode()) for k, v in named.items()]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="switchboard"'))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
