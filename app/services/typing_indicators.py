"""Typing indicators: shown on an agent's callback, cleared by the agent, by its next message,
or by the server when the callback's timeout passes.

Timers live in the process that received the callback; each (conversation, agent) has at most
one, and a newer callback replaces it.
"""

from __future__ import annotations

import asyncio

from ..events import bus
from ..events.payloads import typing_event
from ..kernel.auth import Principal
from ..kernel.errors import Forbidden, NotFound, ValidationFailed
from ..kernel.ids import could_be_id
from .agents import find_agent
from .conversations import access_conversation, named_by_client

__all__ = ["set_typing", "clear", "shutdown", "TYPING_SCOPES", "DEFAULT_TIMEOUT_MS", "MAX_TIMEOUT_MS", "MAX_LABEL"]

TYPING_SCOPES = frozenset({"conversations:write", "agents:write"})
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 600_000
MAX_LABEL = 200


class _Timers:
    def __init__(self) -> None:
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.rooms: dict[tuple[str, str], list[str]] = {}

    def cancel(self, key: tuple[str, str]) -> bool:
        task = self.tasks.pop(key, None)
        self.rooms.pop(key, None)
        if task is None:
            return False
        if task is not asyncio.current_task():
            task.cancel()
        return True

    def cancel_all(self) -> None:
        for key in list(self.tasks):
            self.cancel(key)


_timers = _Timers()


async def _expire(key: tuple[str, str], rooms: list[str], delay: float) -> None:
    await asyncio.sleep(delay)
    if _timers.tasks.get(key) is asyncio.current_task():
        _timers.tasks.pop(key, None)
        _timers.rooms.pop(key, None)
        await bus.emit("typing", rooms, typing_event(key[0], key[1], typing=False))


async def set_typing(
    principal: Principal,
    agent_id: str,
    conversation_id: str,
    *,
    typing: bool,
    label: str | None = None,
    show_dots: bool = True,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> None:
    # The indicator speaks for the agent: its automation's API key, never a person's session.
    if principal.kind != "api_key":
        raise Forbidden("Typing indicators are sent with an API key.")
    if not principal.scopes & TYPING_SCOPES:
        raise Forbidden(
            "This action requires the 'conversations:write' or 'agents:write' permission.",
            details={"required_scope": "conversations:write"},
        )
    if label is not None and len(label) > MAX_LABEL:
        raise ValidationFailed(details={"data.label": [f"must be at most {MAX_LABEL} characters"]})
    if not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
        raise ValidationFailed(details={"data.timeout": [f"must be between 1 and {MAX_TIMEOUT_MS} milliseconds"]})
    agent = await find_agent(principal, agent_id)
    conv = None
    if could_be_id(conversation_id):
        try:
            conv = await access_conversation(principal, conversation_id)
        except NotFound:
            pass
    if conv is None:
        # An automation may name the conversation by the id it gave it (``open_for_client``).
        named = await named_by_client(principal, agent.id, conversation_id)
        if named is None:
            raise NotFound("Conversation not found.")
        conv = await access_conversation(principal, named)
    if conv.agent_id != agent.id:  # type: ignore[attr-defined]
        raise NotFound("Conversation not found for this agent.")
    rooms = bus.conversation_rooms(conv.id, conv.user_id)  # type: ignore[attr-defined]
    await show(conv.id, agent.id, rooms, typing=typing, label=label, show_dots=show_dots, timeout_ms=timeout_ms)


async def show(
    conversation_id: str, agent_id: str, rooms: list[str], *, typing: bool, label: str | None = None,
    show_dots: bool = True, timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> None:
    """Turn the agent's indicator on (cleared by its next message, or after ``timeout_ms``)
    or off; for the agent's own automation (``set_typing``) and the gateway's custom agents."""
    key = (conversation_id, agent_id)
    _timers.cancel(key)
    await bus.emit("typing", rooms, typing_event(conversation_id, agent_id, typing=typing, label=label, show_dots=show_dots))
    if typing:
        _timers.rooms[key] = rooms
        _timers.tasks[key] = asyncio.create_task(_expire(key, rooms, timeout_ms / 1000), name=f"typing-{conversation_id}")


async def clear(conversation_id: str, agent_id: str) -> None:
    """An agent's message ends its typing indicator (when this process is showing one)."""
    key = (conversation_id, agent_id)
    rooms = _timers.rooms.get(key)
    if rooms is not None and _timers.cancel(key):
        await bus.emit("typing", rooms, typing_event(conversation_id, agent_id, typing=False))


async def shutdown() -> None:
    """Cancel every pending auto-clear (the app calls this when it stops)."""
    _timers.cancel_all()
