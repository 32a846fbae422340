"""OpenAI's Chat Completions API (and the OpenAI-compatible ones of OpenRouter, Google and
xAI) through the openai SDK, streamed."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import openai

from .base import Event, Finish, ProviderError, TextDelta, Tool, ToolCallReady, Turn, Usage, sdk_error, tool_call

__all__ = ["OpenAIClient", "to_messages"]

_FINISH = {"stop": "end", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def to_messages(system: str | None, history: list[Turn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for turn in history:
        if turn.role == "tool":
            out.append({"role": "tool", "tool_call_id": turn.tool_call_id, "content": turn.content})
        elif turn.role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": turn.content or None}
            if turn.tool_calls:
                message["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                    for c in turn.tool_calls
                ]
            out.append(message)
        else:
            out.append({"role": "user", "content": turn.content})
    return out


def _error(exc: Exception, name: str) -> ProviderError:
    return sdk_error(name, exc, status_error=openai.APIStatusError, timeout_error=openai.APITimeoutError,
                     connection_error=openai.APIConnectionError)


class OpenAIClient:
    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0, name: str = "OpenAI") -> None:
        self._sdk = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._name = name

    async def stream(
        self,
        *,
        model: str,
        system: str | None,
        history: list[Turn],
        tools: list[Tool],
        temperature: float | None = None,
        max_tokens: int = 4096,
    ) -> AsyncIterator[Event]:
        params: dict[str, Any] = {
            "model": model,
            "messages": to_messages(system, history),
            # OpenAI's own API takes max_completion_tokens (its newer models refuse max_tokens);
            # the compatible ones keep max_tokens.
            ("max_completion_tokens" if self._name == "openai" else "max_tokens"): max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            params["tools"] = [
                {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}
                for t in tools
            ]
        if temperature is not None:
            params["temperature"] = temperature
        try:
            stream = await self._sdk.chat.completions.create(**params)
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, self._name) from exc
        calls: dict[int, dict[str, Any]] = {}  # tool call index -> what has arrived of it
        finish: str | None = None
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    yield Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield TextDelta(delta.content)
                    for part in (delta.tool_calls if delta is not None else None) or []:
                        call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                        call["id"] = part.id or call["id"]
                        if part.function is not None:
                            call["name"] += part.function.name or ""
                            call["arguments"] += part.function.arguments or ""
                    if choice.finish_reason:
                        finish = choice.finish_reason
                        for _, call in sorted(calls.items()):
                            yield ToolCallReady(tool_call(call["id"], call["name"], call["arguments"]))
                        calls.clear()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _error(exc, self._name) from exc
        finally:
            await stream.close()  # a stopped generation closes the upstream connection
        yield Finish(_FINISH.get(finish or "", "other"), finish)

    async def close(self) -> None:
        await self._sdk.close()
