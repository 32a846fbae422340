"""What every provider gives the agent runner: one streamed reply for a history and a tool
list, as a sequence of events. Retries are the runner's (every client is made with the
SDK's own retries off), so a provider only says whether an error is worth retrying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol, Union

__all__ = [
    "Tool", "ToolCall", "Turn", "TextDelta", "ToolCallReady", "Usage", "Finish", "Event", "ProviderError", "Client",
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
