"""What every provider gives the agent runner: one streamed reply for a history and a tool
list, as a sequence of events. Retries are the runner's (every client is made with the
SDK's own retries off), so a provider only says whether an error is worth retrying."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol, Union

__all__ = [
    "Tool", "ToolCall", "Turn", "TextDelta", "ToolCallReady", "Usage", "Finish", "Event", "ProviderError", "Client", "sdk_error", "tool_call",
]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One entry of the history: a user or assistant text (an assistant turn may carry the
    tool calls it made), or a tool's result answering one call."""

    role: Literal["user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # role "tool": the call it answers
    is_error: bool = False  # role "tool": the tool failed (or was declined)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallReady:
    call: ToolCall


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Finish:
    reason: str  # end | tool_use | max_tokens | other (the provider's own word in ``raw``)
    raw: str | None = None


Event = Union[TextDelta, ToolCallReady, Usage, Finish]


@dataclass
class ProviderError(Exception):
    """A failed call. ``retryable``: a 429, a 5xx, a timeout or a dropped connection."""

    message: str
    retryable: bool = False
    status: int | None = None
    retry_after: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def tool_call(call_id: str, name: str, arguments_json: str) -> ToolCall:
    """A call from its streamed pieces: arguments that are not a JSON object are kept as
    they came (``_unparsed``, or ``value`` for another JSON value), for the tool to refuse."""
    try:
        arguments = json.loads(arguments_json or "{}")
    except ValueError:
        return ToolCall(call_id, name, {"_unparsed": arguments_json})
    return ToolCall(call_id, name, arguments if isinstance(arguments, dict) else {"value": arguments})


def sdk_error(name: str, exc: Exception, *, status_error: type[Exception], timeout_error: type[Exception],
              connection_error: type[Exception]) -> ProviderError:
    """An SDK's failure as a ``ProviderError``. The anthropic and openai SDKs share the shape
    (a status error with ``status_code``, ``message`` and ``response``; timeout and connection
    errors), so one rule says what is worth retrying: 429, 5xx, a timeout, a lost connection."""
    if isinstance(exc, status_error):
        status = int(getattr(exc, "status_code", 0))
        retry_after = getattr(exc, "response").headers.get("retry-after")
        return ProviderError(
            f"{name} answered {status}: {getattr(exc, 'message', exc)}",
            retryable=status == 429 or status >= 500,
            status=status,
            retry_after=float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None,
        )
    if isinstance(exc, timeout_error):  # a subclass of the connection error in both SDKs: first
        return ProviderError(f"{name} did not answer in time", retryable=True)
    if isinstance(exc, connection_error):
        return ProviderError(f"could not reach {name}: {exc}", retryable=True)
    return ProviderError(f"{name} call failed: {exc}")


class Client(Protocol):
    def stream(
        self,
        *,
        model: str,
        system: str | None,
        history: list[Turn],
        tools: list[Tool],
        temperature: float | None = None,
        max_tokens: int = 4096,
    ) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...
