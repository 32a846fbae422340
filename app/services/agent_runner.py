"""Custom agents answer: the gateway runs the LLM and streams its reply.

On a user message to a custom agent (``messages.on_user_message``): the agent's typing
indicator turns on ("Thinking..."), the reply streams to the conversation as
``message.delta`` events (coalesced to at most about 20 a second) under the id the stored
reply will have, then the reply is stored and announced as ``message.created`` (which ends
the indicator).

* One generation per conversation at a time; a message sent meanwhile is answered next.
* Transient provider failures (429, 5xx, timeouts, a dropped connection) are retried with
  backoff until text has streamed; a final failure is stored as the reply with ``status:
  "error"`` and a readable reason, plus an ``agent.error`` event: a conversation never
  waits in silence.
* ``stop`` cancels the provider request (its connection is closed) and keeps the partial
  text as a reply with ``status: "stopped"``; stopping the server does the same.
* Nothing is stored while a reply streams, so a restart leaves no half-written message; at
  start, user messages of the last minutes left unanswered by a restart are answered.

Tools: the tools of the agent's MCP servers are offered to the model, its calls run (those
matched by ``require_approval`` only once a person approves them in the conversation, as an
interactive message), and the results given back, for up to ``agent_max_tool_rounds``
rounds; the calls and results are kept in the reply's ``meta.tool_calls``.

History: the system prompt, then the newest messages within ``HistoryBudget`` (messages and
approximate tokens, both configurable), whole messages only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import providers
from providers.base import Client, Finish, ProviderError, TextDelta, Tool, ToolCall, ToolCallReady, Turn, Usage

from ..events import bus
from ..events.payloads import agent_error, message_delta
from ..kernel.auth import Principal, require_scope
from ..kernel.config import Settings
from ..kernel.db import fetch_dicts
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..models.chat import Agent, Message
from . import agent_tools, agent_usage, credentials, interactive, messages, typing_indicators
from .conversations import access_conversation

__all__ = ["AgentRunner", "HistoryBudget", "stop_generation", "in_progress", "COALESCE_SECONDS"]

log = logging.getLogger("switchboard.agents")

COALESCE_SECONDS = 0.05  # at most ~20 delta events a second
MAX_ATTEMPTS = 3
RESUME_WINDOW = timedelta(minutes=10)
THINKING = "Thinking..."
TYPING_MS = 120_000


class AgentFailure(Exception):
    """The reply cannot be made; the message says why, for the person reading it."""


@dataclass(frozen=True)
class HistoryBudget:
    messages: int = 50
    tokens: int = 12_000  # approximate: four characters a token


@dataclass
class _Generation:
    conversation_id: str
    message_id: str
    rooms: list[str]
    parts: list[str] = field(default_factory=list)
    unsent: str = ""
    last_emit: float = 0.0
    flush: asyncio.TimerHandle | None = None
    stopped: bool = False
    task: asyncio.Task[tuple[str, dict[str, Any]]] | None = None
    # What the reply has cost and done so far: kept with it however it ends.
    meta: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def spent(self) -> dict[str, Any]:
        out = {**self.meta, "usage": {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    @property
    def text(self) -> str:
        return "".join(self.parts)


class AgentRunner:
    current: "AgentRunner | None" = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._serving: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._generations: dict[str, _Generation] = {}
        self.budget = HistoryBudget(max(1, settings.agent_history_messages), max(1, settings.agent_history_tokens))
        self._tasks: set[asyncio.Task[None]] = set()  # fire-and-forget work, kept referenced

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        AgentRunner.current = self
        messages.on_user_message(_on_user_message)
        task = asyncio.get_running_loop().create_task(self._resume(), name="agent-resume")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if AgentRunner.current is self:
            AgentRunner.current = None
        tasks = list(self._serving.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await providers.close_all()

    async def _resume(self) -> None:
        """Answer user messages a restart left unanswered (recent ones only)."""
        try:
            rows = await fetch_dicts(
                "SELECT c.id FROM conversations c JOIN agents a ON a.id = c.agent_id "
                "JOIN messages m ON m.conversation_id = c.id AND m.seq = c.last_seq "
                "WHERE a.protocol = 'custom' AND a.enabled = ? AND m.role = 'user' AND m.created_at > ?",
                [True, utcnow() - RESUME_WINDOW],
            )
        except Exception:  # noqa: BLE001 - a failed sweep must not stop the server
            log.exception("agents: could not look for unanswered messages")
            return
        for row in rows:
            self.kick(row["id"])

    # ------------------------------------------------------------ scheduling

    def kick(self, conversation_id: str) -> None:
        """Answer the conversation's newest user message (after the one in progress)."""
        if conversation_id in self._serving:
            self._again.add(conversation_id)
            return
        task = asyncio.get_running_loop().create_task(self._serve(conversation_id), name=f"agent-{conversation_id}")
        self._serving[conversation_id] = task

    async def _serve(self, conversation_id: str) -> None:
        try:
            while True:  # until every user message has its reply
                self._again.discard(conversation_id)
                try:
                    answered = await self._answer(conversation_id)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - one conversation's bug must not stop the others
                    log.exception("agents: answering %s failed", conversation_id)
                    answered = False
                if not answered and conversation_id not in self._again:
                    return
        finally:
            self._serving.pop(conversation_id, None)

    def stop_generation(self, conversation_id: str) -> bool:
        generation = self._generations.get(conversation_id)
        if generation is None or generation.task is None or generation.task.done():
            return False
        generation.stopped = True
        generation.task.cancel()  # closes the provider's stream, and its connection
        return True

    def in_progress(self, conversation_id: str) -> tuple[str, str] | None:
        generation = self._generations.get(conversation_id)
        if generation is None:
            return None
        # What the deltas carried so far: the next delta continues it exactly.
        sent = generation.text[: len(generation.text) - len(generation.unsent)]
        return generation.message_id, sent

    # ------------------------------------------------------------ one reply

    async def _answer(self, conversation_id: str) -> bool:
        """Reply to the conversation's first unanswered user message; whether there was one."""
        target = await messages.target_of(conversation_id)
        if target is None or target.agent_protocol != "custom" or not target.agent_enabled:
            return False
        agent = await Agent.get_or_none(id=target.agent_id)
        if agent is None:
            return False
        found = await _history(conversation_id, self.budget)
        if found is None:
            return False  # every message has its reply
        history, reply_to = found
        rooms = bus.conversation_rooms(conversation_id, target.owner_id)
        generation = _Generation(conversation_id, new_id("message"), rooms)
        self._generations[conversation_id] = generation
        await typing_indicators.show(conversation_id, agent.id, rooms, typing=True, label=THINKING, timeout_ms=TYPING_MS)
        status, error = "complete", None  # type: str, str | None
        generation.meta["reply_to_seq"] = reply_to
        try:
            generation.task = asyncio.get_running_loop().create_task(self._generate(agent, history, generation))
            try:
                await asyncio.shield(generation.task)
            except AgentFailure as exc:
                status, error = "error", str(exc)
            except asyncio.CancelledError:
                generation.task.cancel()  # closes the provider's stream, and its connection
                await asyncio.gather(generation.task, return_exceptions=True)
                status = "stopped"
                if not generation.stopped:  # the server is stopping: keep what was written, then stop
                    await self._finish(target, generation, generation.text, status, generation.spent(), None)
                    raise
            except Exception:  # noqa: BLE001 - a bug or a database error: still an answer, never silence
                log.exception("agents: the reply in %s failed", conversation_id)
                status, error = "error", "the gateway failed while answering (see its log)"
            await self._finish(target, generation, generation.text, status, generation.spent(), error)
            return True
        finally:
            if self._generations.get(conversation_id) is generation:
                del self._generations[conversation_id]

    async def _finish(self, target: messages.Target, generation: _Generation, text: str, status: str,
                      meta: dict[str, Any], error: str | None) -> None:
        if generation.flush is not None:
            generation.flush.cancel()
        await self._emit(generation)
        if error is not None:
            meta = {**meta, "error": error}
            text = text or f"The agent could not answer: {error}"
        await messages.store_reply(target, text, message_id=generation.message_id, status=status, meta=meta)
        tokens = meta.get("usage") or {}
        if tokens:
            await agent_usage.record(
                organization_id=target.organization_id, agent_id=target.agent_id, conversation_id=target.conversation_id,
                message_id=generation.message_id, provider=str(meta.get("provider")), model=str(meta.get("model")),
                prompt_tokens=int(tokens.get("prompt_tokens") or 0), completion_tokens=int(tokens.get("completion_tokens") or 0),
            )
        if error is not None:
            await bus.emit("agent.error", generation.rooms,
                           agent_error(target.conversation_id, target.agent_id, generation.message_id, error))

    async def _generate(self, agent: Agent, history: list[Turn], generation: _Generation) -> tuple[str, dict[str, Any]]:
        config = agent.config or {}
        provider, model = str(config.get("provider") or ""), str(config.get("model") or "")
        if provider not in providers.PROVIDERS or not model:
            raise AgentFailure("this agent has no provider and model configured")
        key = await credentials.api_key(
            str(agent.organization_id), config.get("credential_id"), provider, self.settings, config.get("base_url")  # type: ignore[attr-defined]
        )
        if not key:
            raise AgentFailure(
                f"no API key for {provider} at {config.get('base_url') or 'its own API'}: "
                "add a credential made for it to the agent, or set the gateway's default key"
            )
        client = providers.client_for(provider, key, config.get("base_url"))
        generation.meta.update(provider=provider, model=model)
        toolbox = None
        turns = list(history)
        try:
            if config.get("mcp_servers"):
                toolbox = await agent_tools.open_toolbox(agent, timeout=self.settings.agent_tool_timeout_seconds)
                if toolbox.unreachable:
                    generation.meta["unreachable_mcp_servers"] = toolbox.unreachable
            for round_number in range(self.settings.agent_max_tool_rounds + 1):
                last_round = round_number == self.settings.agent_max_tool_rounds
                tools = toolbox.tools if toolbox is not None and not last_round else []
                text, calls, usage, finish = await self._round(client, model, config, turns if tools else _in_words(turns),
                                                               tools, generation)
                generation.prompt_tokens += usage.prompt_tokens
                generation.completion_tokens += usage.completion_tokens
                generation.meta["finish"] = finish
                if finish != "tool_use" or not calls or toolbox is None or last_round:
                    break
                turns.append(Turn("assistant", text, tuple(calls)))
                for call in calls:
                    result, failed, approved = await self._run_tool(toolbox, call, agent, generation)
                    turns.append(Turn("tool", result, tool_call_id=call.id, is_error=failed))
                    generation.tool_calls.append({"id": call.id, "name": call.name, "arguments": call.arguments,
                                                  "result": result[:2000], "is_error": failed,
                                                  **({"approved": approved} if approved is not None else {})})
        finally:
            if toolbox is not None:
                await toolbox.aclose()
        return generation.text, generation.spent()

    async def _round(
        self, client: Client, model: str, config: dict[str, Any], turns: list[Turn], tools: list[Tool],
        generation: _Generation,
    ) -> tuple[str, list[ToolCall], Usage, str | None]:
        """One model call: (its text, its tool calls, usage, finish), retried while nothing has
        streamed from it yet."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            parts: list[str] = []
            calls: list[ToolCall] = []
            usage, finish = Usage(), None
            try:
                async for event in client.stream(
                    model=model, system=config.get("system_prompt"), history=turns, tools=tools,
                    temperature=config.get("temperature"), max_tokens=int(config.get("max_tokens") or 4096),
                ):
                    if isinstance(event, TextDelta):
                        parts.append(event.text)
                        await self._push(generation, event.text)
                    elif isinstance(event, ToolCallReady):
                        calls.append(event.call)
                    elif isinstance(event, Usage):
                        usage = event
                    elif isinstance(event, Finish):
                        finish = event.reason
                return "".join(parts), calls, usage, finish
            except ProviderError as exc:
                if not exc.retryable or attempt == MAX_ATTEMPTS or parts:
                    raise AgentFailure(str(exc)) from exc
                delay = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
                log.info("agents: %s (attempt %d), retrying in %.1f s", exc, attempt, delay)
                await asyncio.sleep(min(delay, 10.0))
        raise AgentFailure("the provider did not answer")  # not reached: the last attempt raises

    async def _run_tool(
        self, toolbox: agent_tools.Toolbox, call: ToolCall, agent: Agent, generation: _Generation,
    ) -> tuple[str, bool, bool | None]:
        """(result, is_error, approved: None when no approval was needed)."""
        if not toolbox.needs_approval(call.name):
            result, failed = await toolbox.call(call.name, call.arguments)
            return result, failed, None
        approved = await self._approve(call, agent, generation)
        if not approved:
            return "The user declined to run this tool.", True, False
        result, failed = await toolbox.call(call.name, call.arguments)
        return result, failed, True

    async def _approve(self, call: ToolCall, agent: Agent, generation: _Generation) -> bool:
        """Ask the conversation, as an interactive approval (pushed to the owner's phone like
        any), and wait for the answer; no answer in time is a no."""
        target = await messages.target_of(generation.conversation_id)
        if target is None:
            return False
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        if len(arguments) > 1500:
            arguments = arguments[:1500] + "…"
        elements = [
            {"type": "header", "text": f"Run {call.name}?"},
            {"type": "text", "text": f"{agent.name} wants to run `{call.name}` with {arguments}"},
            {"type": "boolean", "approve_label": "Run it", "reject_label": "Don't"},
        ]
        timeout = self.settings.agent_approval_timeout_seconds
        message, _ = await interactive.ask(target, elements, expires_at=utcnow() + timedelta(seconds=timeout))
        await typing_indicators.show(generation.conversation_id, agent.id, generation.rooms, typing=False)
        try:
            settled = await interactive.wait_settled(message.id, timeout + 5)
        except asyncio.CancelledError:
            await asyncio.shield(interactive.withdraw(message.id))  # stopped: nobody waits for the answer now
            raise
        approved = settled is not None and settled.status == "responded" and bool((settled.response or {}).get("approved"))
        await typing_indicators.show(generation.conversation_id, agent.id, generation.rooms, typing=True, label=THINKING,
                                     timeout_ms=TYPING_MS)
        return approved

    # ------------------------------------------------------------ streaming

    async def _push(self, generation: _Generation, text: str) -> None:
        generation.parts.append(text)
        generation.unsent += text
        loop = asyncio.get_running_loop()
        if loop.time() - generation.last_emit >= COALESCE_SECONDS:
            await self._emit(generation)
        elif generation.flush is None:
            wait = generation.last_emit + COALESCE_SECONDS - loop.time()
            generation.flush = loop.call_later(max(0.0, wait), self._flush_later, generation)

    def _flush_later(self, generation: _Generation) -> None:
        generation.flush = None
        task = asyncio.get_running_loop().create_task(self._emit(generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, generation: _Generation) -> None:
        if generation.flush is not None:
            generation.flush.cancel()
            generation.flush = None
        if not generation.unsent:
            return
        delta, generation.unsent = generation.unsent, ""
        generation.last_emit = asyncio.get_running_loop().time()
        await bus.emit("message.delta", generation.rooms, message_delta(generation.conversation_id, generation.message_id, delta))


def _on_user_message(target: messages.Target, message: Message) -> None:
    runner = AgentRunner.current
    if runner is not None:
        runner.kick(target.conversation_id)


def _in_words(turns: list[Turn]) -> list[Turn]:
    """The history for a call that offers no tools: earlier tool calls and results told in
    words (providers refuse tool blocks in a request that defines no tools)."""
    out = []
    for turn in turns:
        if turn.role == "tool":
            out.append(Turn("user", f"[result of tool call {turn.tool_call_id}{' (failed)' if turn.is_error else ''}]: {turn.content}"))
        elif turn.tool_calls:
            said = "; ".join(f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)}) as call {c.id}" for c in turn.tool_calls)
            out.append(Turn("assistant", (turn.content + "\n" if turn.content else "") + f"[I called: {said}]"))
        else:
            out.append(turn)
    return out


def _tokens(turn: Turn) -> int:
    """Roughly: four characters a token, plus a little for each entry and tool call."""
    size = len(turn.content) + sum(len(c.name) + len(json.dumps(c.arguments)) for c in turn.tool_calls)
    return size // 4 + 4


def _turns_of(row: dict[str, Any], meta: dict[str, Any]) -> list[Turn]:
    """A message as the model sees it: a reply that used tools is its calls, their results,
    then its text; a call and its result always travel together."""
    calls = [c for c in meta.get("tool_calls") or [] if isinstance(c, dict) and c.get("id") and c.get("name")]
    if row["role"] != "assistant" or not calls:
        return [Turn(row["role"], _with_files(row))]
    made = tuple(ToolCall(str(c["id"]), str(c["name"]), dict(c.get("arguments") or {})) for c in calls)
    turns = [Turn("assistant", "", made)]
    turns += [Turn("tool", str(c.get("result") or ""), tool_call_id=str(c["id"]), is_error=bool(c.get("is_error"))) for c in calls]
    if row["content"] or row.get("attachments"):
        turns.append(Turn("assistant", _with_files(row)))
    return turns


def _with_files(row: dict[str, Any]) -> str:
    """The message's text, and the files sent with it named (the model sees no bytes)."""
    raw = row.get("attachments")
    files = json.loads(raw) if isinstance(raw, str) else raw
    if not files:
        return str(row["content"])
    named = ", ".join(f"{f['filename']} ({f['content_type']}, {f['size_bytes']} bytes)" for f in files)
    return (row["content"] + "\n" if row["content"] else "") + f"[files attached: {named}]"


async def _history(conversation_id: str, budget: HistoryBudget) -> tuple[list[Turn], int] | None:
    """The next user message to answer and the history up to it, oldest first: the newest
    ``budget.messages`` messages within ``budget.tokens`` (approximate), whole messages only
    (a reply's tool calls with their results), the message answered always in; error
    replies and a tool's approval questions left out. ``None`` when every user message has
    its reply.

    A reply is stored after the messages sent while it was written, so it records the seq
    of the message it answers (``meta.reply_to_seq``) and is read back in that place."""
    rows = await fetch_dicts(
        "SELECT seq, role, content, status, meta, kind, attachments FROM messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?",
        [conversation_id, budget.messages],
    )
    placed: list[tuple[float, dict[str, Any], dict[str, Any]]] = []
    answered = 0
    for row in rows:
        if row["kind"] == "interactive":
            continue  # questions (a tool's approval): their outcome is in the tool results
        meta = json.loads(row["meta"]) if isinstance(row["meta"], str) else (row["meta"] or {})
        key = float(row["seq"])
        if row["role"] == "assistant":
            reply_to = meta.get("reply_to_seq")
            covers = int(reply_to) if isinstance(reply_to, int) else int(row["seq"])
            answered = max(answered, covers)
            key = covers + 0.5 if isinstance(reply_to, int) else key
        placed.append((key, row, meta))
    waiting = sorted(row["seq"] for _, row, _ in placed if row["role"] == "user" and row["seq"] > answered)
    if not waiting:
        return None
    target = waiting[0]
    kept: list[list[Turn]] = []
    used = 0
    for key, row, meta in sorted(placed, key=lambda entry: entry[0], reverse=True):
        if key > target or row["role"] not in ("user", "assistant") or row["status"] == "error":
            continue
        turns = _turns_of(row, meta) if row["content"] or row["attachments"] or meta.get("tool_calls") else []
        if not turns:
            continue
        cost = sum(_tokens(t) for t in turns)
        if kept and used + cost > budget.tokens:
            break
        used += cost
        kept.append(turns)
    return [turn for turns in reversed(kept) for turn in turns], target


async def stop_generation(principal: Principal, conversation_id: str) -> bool:
    """Stop the reply being written in the conversation (a person who sees it may)."""
    require_scope(principal, "conversations:write")
    conversation = await access_conversation(principal, conversation_id)
    runner = AgentRunner.current
    return runner is not None and runner.stop_generation(conversation.id)


async def in_progress(principal: Principal, conversation_id: str) -> tuple[str, str] | None:
    """(message id, text so far) of the reply being written, for a client catching up."""
    conversation = await access_conversation(principal, conversation_id)
    runner = AgentRunner.current
    return runner.in_progress(conversation.id) if runner is not None else None
