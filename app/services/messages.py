"""Messages: user messages, agent messages (originate), history and sync.

Every message gets the next per-conversation ``seq`` in the transaction that stores it: the
conversation's ``last_seq`` is bumped with ``UPDATE ... RETURNING`` (a row lock on
PostgreSQL; SQLite serializes writers), so seqs are gap-free and strictly increasing, and a
rolled-back insert gives its number back. ``(conversation, external_message_id)`` is unique,
so concurrent duplicate originates store one message; the others get 409
``duplicate_message`` naming it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

from tortoise import connections
from tortoise.exceptions import IntegrityError

from .. import outbox
from ..events import bus
from ..events.payloads import message_created, message_json
from ..kernel import sqlite_direct
from ..kernel.auth import Principal, require_scope
from ..kernel.db import fetch_dicts, insert_sql, placeholders as _placeholders
from ..kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic, in_atomic, on_commit
from ..models.chat import Interaction, Message
from . import files, subscriptions, usage
from . import typing_indicators as typing_service
from .agents import outbox_key, reply_url
from .conversations import access_conversation, named_by_client, visible_sql

__all__ = [
    "check_content",
    "check_external_id",
    "send_user_message",
    "originate",
    "agent_target",
    "store_interactive",
    "Target",
    "list_messages",
    "MessagePage",
    "MAX_CONTENT",
    "SYNC_LIMIT",
]

MAX_CONTENT = 32_768
SYNC_LIMIT = 500


@dataclass
class Target:
    """What storing a message needs about its conversation, read in one query."""

    conversation_id: str
    organization_id: str
    owner_id: str
    owner_email: str
    agent_id: str
    agent_enabled: bool
    agent_protocol: str
    webhook_url: str | None
    test_webhook_url: str | None
    test_mode: bool
    last_seq: int = 0


_TARGET_SQL = (
    "SELECT c.id, c.organization_id, c.user_id, c.last_seq, u.email, a.id AS agent_id, a.enabled, "
    "a.protocol, a.webhook_url, a.test_webhook_url, a.test_mode FROM conversations c "
    "JOIN agents a ON a.id = c.agent_id JOIN users u ON u.id = c.user_id "
    "WHERE c.id = ?"
)


async def _target(principal: Principal, conversation_id: str) -> Target:
    """The conversation as ``access_conversation`` sees it (404 rules included), but read
    with one hand-written query: this is the hot path of every message."""
    where, visible = visible_sql(principal)
    rows = await fetch_dicts(_TARGET_SQL + where, [conversation_id, *visible])
    if not rows:
        raise NotFound("Conversation not found.")
    return _target_from(rows[0])


def _target_from(r: dict[str, Any]) -> Target:
    return Target(
        conversation_id=r["id"],
        organization_id=r["organization_id"],
        owner_id=r["user_id"],
        owner_email=r["email"],
        agent_id=r["agent_id"],
        agent_enabled=bool(r["enabled"]),
        agent_protocol=r["protocol"],
        webhook_url=r["webhook_url"],
        test_webhook_url=r["test_webhook_url"],
        test_mode=bool(r["test_mode"]),
        last_seq=int(r["last_seq"]),
    )


def _ensure_enabled(target: Target) -> None:
    if not target.agent_enabled:
        raise Conflict("This agent is disabled.", code="agent_disabled", details={"agent_id": target.agent_id})


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    has_more: bool
    last_seq: int
    interactions: dict[str, Interaction] = field(default_factory=dict)  # by message id


def check_content(content: str, *, empty_ok: bool = False) -> str:
    """``empty_ok``: a message that carries files may have no text."""
    if not isinstance(content, str) or not (content.strip() or empty_ok):
        raise ValidationFailed(details={"content": ["must not be empty"]})
    if len(content) > MAX_CONTENT:
        raise ValidationFailed(details={"content": [f"must be at most {MAX_CONTENT} characters"]})
    return content


_BUMP = {
    "sqlite": "UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE id = ? RETURNING last_seq",
    "postgres": "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $1 WHERE id = $2 RETURNING last_seq",
}


async def _store(
    target: Target,
    *,
    role: str,
    content: str,
    user_id: str | None,
    user_email: str | None,
    external_message_id: str | None = None,
    clears_typing: bool = False,
    interactive: tuple[list[dict[str, Any]], Any] | None = None,
    message_id: str | None = None,
    status: str = "complete",
    meta: dict[str, Any] | None = None,
    attachments: files.Attached | None = None,
    origin: Literal["person", "automation"] = "person",
) -> Message:
    """Write the message (and, for a webhook agent, its outbox row) in one transaction,
    then emit ``message.created`` and wake the outbox worker. ``interactive`` is
    (elements, interaction) of an interactive message, written in the caller's transaction.
    ``message_id``, ``status`` and ``meta``: a custom agent's reply, announced by that id
    while it streamed."""
    now = utcnow()
    conv_id = target.conversation_id
    row: dict[str, Any] = {
        "id": message_id or new_id("message"),
        "conversation_id": conv_id,
        "seq": 0,  # assigned in the transaction
        "role": role,
        "content": content,
        "user_id": user_id,
        "external_message_id": external_message_id,
        "created_at": now,
    }
    interaction = None
    if interactive is not None:
        row["kind"], (row["elements"], interaction) = "interactive", interactive
    if status != "complete":
        row["status"] = status
    message_meta = meta
    if meta is not None:
        row["meta"] = _META.to_db_value(meta, Message)
    if attachments is not None:
        row["attachments"] = _ATTACHMENTS.to_db_value(attachments.stored, Message)
    # The stored message as a saved instance (built without validation); its seq is set once
    # the transaction assigns it.
    message = Message._init_from_db(**row)
    message.meta = message_meta
    if attachments is not None:
        message.attachments = attachments.stored
        message.attachment_views = attachments.views
    delivery: dict[str, Any] | None = None
    if role == "user" and target.agent_protocol == "webhook":
        url = target.test_webhook_url if target.test_mode and target.test_webhook_url else target.webhook_url
        if url:
            event = message_created(
                message, agent_id=target.agent_id, user_email=user_email, organization_id=target.organization_id,
                reply_url=reply_url(target.agent_id), origin=origin,
            )
            delivery = outbox.row(
                organization_id=target.organization_id,
                channel="webhook",
                kind="agent_webhook",
                event="message.created",
                target=url,
                payload=event.webhook,
                ordering_key=conv_id,
                secret_ref=outbox_key(target.agent_id),
                hold_key=outbox_key(target.agent_id),
                agent_id=target.agent_id,
                conversation_id=conv_id,
                message_id=row["id"],
                now=now,
            )
    announced = await subscriptions.pending(target.organization_id, "message.created", conv_id)
    outgoing = _outgoing(delivery, announced, message, interaction)
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite" and not in_atomic():
        # The write joins other requests' in a shared commit and lands even if this request is
        # cancelled meanwhile (a client hanging up): its announcements must not be cut off.
        task = asyncio.ensure_future(_commit(target, message, row, outgoing, _write_sqlite, clears_typing))
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)
    return await _commit(target, message, row, outgoing, _write, clears_typing, interaction)


# The outbox rows written with a message, made once the write has given it its seq.
Outgoing = Callable[[int], list[dict[str, Any]]]


def _outgoing(
    delivery: dict[str, Any] | None, announced: subscriptions.Pending | None, message: Message, interaction: Any
) -> Outgoing | None:
    """The agent's webhook delivery and the event subscriptions' (whose data is the message
    as the socket event shows it, seq included)."""
    if delivery is None and announced is None:
        return None

    def rows(seq: int) -> list[dict[str, Any]]:
        items = []
        if delivery is not None:
            delivery["ordering_seq"] = seq
            items.append(delivery)
        if announced is not None:
            message.seq = seq
            items += announced.rows(message_json(message, interaction))
        return items

    return rows


async def _commit(
    target: Target,
    message: Message,
    row: dict[str, Any],
    outgoing: Outgoing | None,
    write: Callable[[dict[str, Any], Outgoing | None], Awaitable[int]],
    clears_typing: bool,
    interaction: Any = None,
) -> Message:
    """Write, then announce: ``message.created``, the outbox wake-up, the typing clear."""
    seq = await write(row, outgoing)
    message.seq = seq
    if outgoing is not None:
        await outbox.wake_after_commit()
    await bus.emit_on_commit(
        "message.created",
        bus.conversation_rooms(target.conversation_id, target.owner_id),
        message_json(message, interaction),
    )
    target.last_seq = seq
    if clears_typing:
        await typing_service.clear(target.conversation_id, target.agent_id)
    if message.role == "user" and target.agent_protocol == "custom":
        for listener in _user_message_listeners:
            await on_commit(_call(listener, target, message))
    return message


# fn(target, message) after a user message to a custom agent is committed: the agent
# runner registers here (it stores its replies through this module, so it cannot be called
# from here directly).
UserMessageListener = Callable[[Target, Message], None]
_user_message_listeners: list[UserMessageListener] = []


def on_user_message(listener: UserMessageListener) -> None:
    if listener not in _user_message_listeners:
        _user_message_listeners.append(listener)


def _call(listener: UserMessageListener, target: Target, message: Message) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        listener(target, message)

    return call


_META = Message._meta.fields_map["meta"]
_ATTACHMENTS = Message._meta.fields_map["attachments"]


async def target_of(conversation_id: str) -> Target | None:
    """The conversation as storing a message needs it (for the agent runner's replies)."""
    rows = await fetch_dicts(_TARGET_SQL, [conversation_id])
    return _target_from(rows[0]) if rows else None


async def store_reply(target: Target, content: str, *, message_id: str, status: str = "complete",
                      meta: dict[str, Any] | None = None) -> Message:
    """A custom agent's reply (it ends the agent's typing indicator)."""
    return await _store(target, role="assistant", content=content[:MAX_CONTENT], user_id=None, user_email=None,
                        clears_typing=True, message_id=message_id, status=status, meta=meta)


def _retrieve(task: asyncio.Task[Message]) -> None:
    # A shielded write whose caller went away: its outcome (a duplicate, say) is nobody's.
    if not task.cancelled():
        task.exception()


async def _write(row: dict[str, Any], outgoing: Outgoing | None) -> int:
    """Any backend: bump the counter, insert the rows, in one transaction."""
    async with atomic() as conn:
        dialect = conn.capabilities.dialect
        bumped = await conn.execute_query_dict(_BUMP[dialect], [row["created_at"], row["conversation_id"]])
        if not bumped:  # deleted since it was read (its agent was deleted meanwhile)
            raise NotFound("Conversation not found.")
        seq = int(bumped[0]["last_seq"])
        values = {**row, "seq": seq}
        if "elements" in values:  # a JSON column: encoded as tortoise encodes it for this database
            values["elements"] = Message._meta.fields_map["elements"].to_db_value(values["elements"], Message)
        sql, params = insert_sql("messages", values)
        await conn.execute_query(_placeholders(dialect, sql), params)
        for item in outgoing(seq) if outgoing is not None else ():
            await outbox.write(conn.execute_query, item, dialect=dialect)
    return seq


def _insert_sqlite(db: sqlite3.Connection, rows: tuple[dict[str, Any], Outgoing | None]) -> int:
    row, outgoing = rows
    bumped = db.execute(_BUMP["sqlite"], (row["created_at"], row["conversation_id"])).fetchone()
    if bumped is None:  # deleted since it was read (its agent was deleted meanwhile)
        raise NotFound("Conversation not found.")
    seq = int(bumped[0])
    sql, params = insert_sql("messages", {**row, "seq": seq})
    db.execute(sql, params)
    for item in outgoing(seq) if outgoing is not None else ():
        outbox.write(db.execute, item)
    return seq


# SQLite: concurrent messages share one transaction, each in its own savepoint (a duplicate
# external_message_id rolls back only its own seq bump and rows); see ``app.sqlite_direct``.
_sqlite_writes = sqlite_direct.GroupCommit(_insert_sqlite)


async def _write_sqlite(row: dict[str, Any], outgoing: Outgoing | None) -> int:
    return await _sqlite_writes.submit((row, outgoing))


async def send_user_message(
    principal: Principal,
    conversation_id: str,
    content: str,
    *,
    attachments: Any = None,
    link_base: str | None = None,
    external_message_id: str | None = None,
    origin: Literal["person", "automation"] = "person",
    meta: dict[str, Any] | None = None,
) -> Message:
    """A person's message: with an API key (on the owner's behalf) or the owner's session.
    ``attachments``: ids of confirmed files; ``link_base``: the host the request came to, for
    their download URLs when no public URL is configured.
    ``origin="automation"``: posted by an automation for the person (the agent's webhook
    says so, so a workflow can skip its own); deduplicated on ``external_message_id``."""
    require_scope(principal, "conversations:write")
    attached = await files.attach(principal, attachments, link_base)
    content = check_content(content, empty_ok=attached is not None)
    external_message_id = check_external_id(external_message_id)
    target = await _target(principal, conversation_id)
    if principal.kind == "session" and (principal.user is None or principal.user.id != target.owner_id):
        raise Forbidden("Only the conversation's owner can send messages in it.")
    _ensure_enabled(target)
    await usage.check_messages_per_day(principal.organization)
    return await _store_once(
        target, external_message_id, role="user", content=content, user_id=target.owner_id, user_email=target.owner_email,
        attachments=attached, origin=origin, meta=meta,
    )


def check_external_id(external_message_id: str | None) -> str | None:
    if external_message_id is not None:
        external_message_id = external_message_id.strip() or None
        if external_message_id is not None and len(external_message_id) > 255:
            raise ValidationFailed(details={"external_message_id": ["must be at most 255 characters"]})
    return external_message_id


async def _store_once(target: Target, external_message_id: str | None, **fields: Any) -> Message:
    """``_store``, where a repeated ``external_message_id`` in the conversation is 409
    ``duplicate_message`` naming the message stored first."""
    try:
        return await _store(target, external_message_id=external_message_id, **fields)
    except IntegrityError:
        if external_message_id is None:
            raise
        existing = await Message.filter(conversation_id=target.conversation_id, external_message_id=external_message_id).first()
        if existing is None:
            raise
        raise Conflict(
            "Message with this external_message_id already exists",
            code="duplicate_message",
            details={"message_id": existing.id, "external_message_id": external_message_id},
        ) from None


async def agent_target(principal: Principal, conversation_id: str, *, agent_id: str | None = None) -> Target:
    """Where an agent's message goes, checked as every agent message is: an API key with
    ``conversations:write``, a visible conversation (of ``agent_id`` when given), an enabled
    agent, the plan's daily message limit."""
    require_scope(principal, "conversations:write")
    if principal.kind != "api_key":
        raise Forbidden("Agent messages are sent with an API key.")
    if agent_id is not None:  # addressed by agent: the conversation may go by its automation's id
        conversation_id = await named_by_client(principal, agent_id, conversation_id) or conversation_id
    target = await _target(principal, conversation_id)
    if agent_id is not None and target.agent_id != agent_id:
        raise NotFound("Conversation not found for this agent.")
    _ensure_enabled(target)
    await usage.check_messages_per_day(principal.organization)
    return target


async def store_interactive(target: Target, content: str, elements: list[dict[str, Any]], interaction: Any) -> Message:
    """An agent's interactive message, inside the caller's transaction (which also writes
    its ``interaction``); ``message.created`` carries both once it commits."""
    return await _store(
        target, role="assistant", content=check_content(content), user_id=None, user_email=None,
        clears_typing=True, interactive=(elements, interaction),
    )


async def originate(
    principal: Principal,
    conversation_id: str,
    content: str,
    *,
    role: str = "assistant",
    external_message_id: str | None = None,
    agent_id: str | None = None,
    attachments: Any = None,
    link_base: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """An agent's message, deduplicated on ``external_message_id``. With ``agent_id`` (sent
    through the agent's own endpoint) the conversation must be that agent's. ``attachments``:
    ids of confirmed files (a report sent back, say)."""
    require_scope(principal, "conversations:write")
    if principal.kind != "api_key":
        raise Forbidden("Agent messages are sent with an API key.")
    if role != "assistant":
        raise ValidationFailed(details={"role": ['must be "assistant"']})
    attached = await files.attach(principal, attachments, link_base)
    content = check_content(content, empty_ok=attached is not None)
    external_message_id = check_external_id(external_message_id)
    target = await agent_target(principal, conversation_id, agent_id=agent_id)
    return await _store_once(
        target, external_message_id, role="assistant", content=content, user_id=None, user_email=None,
        clears_typing=True, attachments=attached, meta=meta,
    )


async def list_messages(
    principal: Principal,
    conversation_id: str,
    *,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 50,
    link_base: str | None = None,
) -> MessagePage:
    """Oldest to newest. ``before_seq`` alone gives the newest page before it."""
    require_scope(principal, "conversations:read")
    conv = await access_conversation(principal, conversation_id)
    limit = max(1, min(limit, SYNC_LIMIT))
    query = Message.filter(conversation_id=conv.id)
    if after_seq is not None:
        query = query.filter(seq__gt=after_seq)
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    if before_seq is not None and after_seq is None:
        rows = list(await query.order_by("-seq").limit(limit + 1))
        has_more = len(rows) > limit
        rows = list(reversed(rows[:limit]))
    else:
        rows = list(await query.order_by("seq").limit(limit + 1))
        has_more = len(rows) > limit
        rows = rows[:limit]
    interactive = [m.id for m in rows if m.kind == "interactive"]
    interactions = {i.message_id: i for i in await Interaction.filter(message_id__in=interactive)} if interactive else {}
    await files.sign_attachments(principal.org_id, rows, link_base)
    return MessagePage(messages=rows, has_more=has_more, last_seq=conv.last_seq, interactions=interactions)
