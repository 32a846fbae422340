"""A fake LLM service on loopback speaking Anthropic's and OpenAI's streaming wire formats.

``POST /v1/messages`` answers as Anthropic does with ``stream: true`` (SSE events
``message_start``, ``content_block_start`` / ``_delta`` / ``_stop`` for text and ``tool_use``
blocks, ``message_delta`` with the stop reason and usage, ``message_stop``); ``POST
/v1/chat/completions`` as OpenAI does (``data:`` lines of ``chat.completion.chunk`` with
content and ``tool_calls`` deltas, a usage chunk when ``stream_options.include_usage``, then
``data: [DONE]``). Each request takes the next scripted ``Reply`` (or a default text), checks
the API key each SDK sends, and is recorded; ``aborted`` counts streams the client
closed before the end (a stopped generation).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.arrivals import Arrivals

__all__ = ["FakeLLM", "Reply", "Text", "ToolUse"]


@dataclass
class Text:
    text: str
    chunks: int = 3  # sent as this many deltas


@dataclass
class ToolUse:
    name: str
    arguments: dict[str, Any]
    id: str = field(default_factory=lambda: "toolu_" + secrets.token_hex(8))


@dataclass
class Reply:
    parts: list[Text | ToolUse] = field(default_factory=lambda: [Text("Hello from the fake model.")])
    status: int = 200  # anything else: an error answer, no stream
    retry_after: int | None = None
    delay: float = 0.0  # between events
    prompt_tokens: int = 11
    completion_tokens: int = 7


@dataclass
class Request:
    api: str  # anthropic | openai
    headers: dict[str, str]
    body: dict[str, Any]


class FakeLLM(Arrivals["Request"]):
    def __init__(self, api_key: str = "sk-test-key") -> None:
        self.api_key = api_key
        super().__init__("LLM")
        self.replies: list[Reply] = []
        self.requests = self.received  # every request, as it arrived
        self.aborted = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> "FakeLLM":
        app = web.Application()
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    # ------------------------------------------------------------------ serving

    async def _take(self, request: web.Request, api: str, key: str | None) -> tuple[Reply, dict[str, Any]] | web.Response:
        body = await request.json()
        self.arrived(Request(api, {k.lower(): v for k, v in request.headers.items()}, body))
        if key != self.api_key:
            return web.json_response({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}, status=401)
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.status != 200:
            headers = {"retry-after": str(reply.retry_after)} if reply.retry_after is not None else {}
            return web.json_response({"type": "error", "error": {"type": "api_error", "message": f"scripted {reply.status}"}},
                                     status=reply.status, headers=headers)
        return reply, body

    async def _send(self, response: web.StreamResponse, reply: Reply, lines: list[bytes]) -> None:
        try:
            for line in lines:
                await response.write(line)
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            await response.write_eof()
        except ConnectionResetError:  # the client closed the stream (a stopped reply)
            self.aborted += 1
        except asyncio.CancelledError:
            self.aborted += 1
            raise

    async def _open(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        return response

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        # The SDK sends its key as ``x-api-key`` (1.x) or ``Authorization: Bearer`` (2.x).
        auth = request.headers.get("Authorization", "")
        taken = await self._take(request, "anthropic", request.headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else None))
        if isinstance(taken, web.Response):
            return taken
        reply, body = taken

        def event(kind: str, data: dict[str, Any]) -> bytes:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

        lines = [event("message_start", {"message": {
            "id": "msg_" + secrets.token_hex(8), "type": "message", "role": "assistant", "model": body.get("model"),
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": reply.prompt_tokens, "output_tokens": 1}}})]
        for index, part in enumerate(reply.parts):
            if isinstance(part, Text):
                lines.append(event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
                for chunk in _split(part.text, part.chunks):
                    lines.append(event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": chunk}}))
            else:
                lines.append(event("content_block_start", {"index": index, "content_block": {
                    "type": "tool_use", "id": part.id, "name": part.name, "input": {}}}))
                for chunk in _split(json.dumps(part.arguments), 2):
                    lines.append(event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta", "partial_json": chunk}}))
            lines.append(event("content_block_stop", {"index": index}))
        stop = "tool_use" if any(isinstance(p, ToolUse) for p in reply.parts) else "end_turn"
        lines.append(event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                             "usage": {"output_tokens": reply.completion_tokens}}))
        lines.append(event("message_stop", {}))
        response = await self._open(request)
        await self._send(response, reply, lines)
        return response

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        taken = await self._take(request, "openai", auth[7:] if auth.startswith("Bearer ") else None)
        if isinstance(taken, web.Response):
            return taken
        reply, body = taken
        ident, created = "chatcmpl-" + secrets.token_hex(8), 1767225600

        def chunk(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": body.get("model"),
                    "choices": choices, "usage": usage}
            return f"data: {json.dumps(data)}\n\n".encode()

        lines = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
        tool_index = 0
        for part in reply.parts:
            if isinstance(part, Text):
                for piece in _split(part.text, part.chunks):
                    lines.append(chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
            else:
                arguments = _split(json.dumps(part.arguments), 2)
                lines.append(chunk([{"index": 0, "delta": {"tool_calls": [{"index": tool_index, "id": part.id, "type": "function",
                    "function": {"name": part.name, "arguments": arguments[0]}}]}, "finish_reason": None}]))
                for piece in arguments[1:]:
                    lines.append(chunk([{"index": 0, "delta": {"tool_calls": [{"index": tool_index, "function": {"arguments": piece}}]},
                                         "finish_reason": None}]))
                tool_index += 1
        finish = "tool_calls" if tool_index else "stop"
        lines.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            lines.append(chunk([], {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                                    "total_tokens": reply.prompt_tokens + reply.completion_tokens}))
        lines.append(b"data: [DONE]\n\n")
        response = await self._open(request)
        await self._send(response, reply, lines)
        return response


def _split(text: str, parts: int) -> list[str]:
    parts = max(1, min(parts, len(text) or 1))
    size = -(-len(text) // parts) or 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
