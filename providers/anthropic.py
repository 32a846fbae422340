"""Anthropic's Messages API through the anthropic SDK, streamed."""

from __future__ import annotations

from typing import Any, AsyncIterator

import anthropic

from .base import Event, Finish, ProviderError, TextDelta, Tool, ToolCallReady, Turn, Usage, sdk_error, tool_call

__all__ = ["AnthropicClient", "to_messages"]

_FINISH = {"end_turn": "end", "stop_sequence": "end", "tool_use": "tool_use", "max_tokens": "max_tokens"}


def to_messages(history: list[Turn]) -> list[dict[str, Any]]:
    """Anthropic's alternating user/assistant messages: tool results ride in a user message
    as ``tool_result`` blocks; neighbours of one role are merged."""
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for turn in history:
        if turn.role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": turn.tool_call_id, "content": turn.content, "is_error": turn.is_error}])
        elif turn.role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": turn.content}] if turn.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in turn.tool_calls]
            if blocks:
                add("assistant", blocks)
        elif turn.content:
            add("user", [{"type": "text", "text": turn.content}])
    return out


def _error(exc: Exception) -> ProviderError:
    return sdk_error("Anthropic", exc, status_error=anthropic.APIStatusError, timeout_error=anthropic.APITimeoutError,
                     connection_error=anthropic.APIConnectionError)


class AnthropicClient:
    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        self._sdk = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

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
        params: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": to_messages(history), "stream": True}
        if system:
            params["system"] = system
        if tools:
            params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools]
        # ``temperature`` is not sent: the Messages API of the anthropic SDK 2.x takes none
        # (agent settings refuse it for this provider).
        try:
            stream = await self._sdk.messages.create(**params)
        except Exception as exc:  # noqa: BLE001 - every SDK failure becomes one error type
            raise _error(exc) from exc
        pending: dict[int, dict[str, Any]] = {}  # block index -> the tool call being streamed
        prompt = completion = 0
        try:
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    prompt = event.message.usage.input_tokens or 0
                elif kind == "content_block_start" and event.content_block.type == "tool_use":
                    block = event.content_block
                    pending[event.index] = {"id": block.id, "name": block.name, "json": ""}
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta" and event.index in pending:
                        pending[event.index]["json"] += delta.partial_json
                elif kind == "content_block_stop" and event.index in pending:
                    call = pending.pop(event.index)
                    yield ToolCallReady(tool_call(call["id"], call["name"], call["json"]))
                elif kind == "message_delta":
                    completion = event.usage.output_tokens or completion
                    if event.delta.stop_reason:
                        yield Usage(prompt, completion)
                        yield Finish(_FINISH.get(event.delta.stop_reason, "other"), event.delta.stop_reason)
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _error(exc) from exc
        finally:
            await stream.close()  # a stopped generation closes the upstream connection

    async def close(self) -> None:
        await self._sdk.close()
