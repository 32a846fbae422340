"""Interactive messages: an agent asks, one person answers, the agent is called back.

* ``send_interactive`` stores an interactive message (a message of its conversation, with
  its elements) and its ``Interaction`` in one transaction.
* ``respond`` records the first valid answer with a conditional update and, in the same
  transaction, queues the signed callback on the outbox's ``callback`` channel; every later
  answer gets 409 ``already_responded``, an answer after ``expires_at`` 410 ``expired``.
* ``expire_due`` turns overdue pending interactions ``expired`` (again one conditional
  update, one callback); ``ExpiryClock`` runs it when the next one is due and at start, so
  an expiry that passed while the server was down is sent after the restart.
* ``get_message(wait=N)`` answers once the interaction is settled or after N seconds; it
  waits on a watch (``app.kernel.waiters``), holding no database connection and no thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from tortoise import connections

from .. import outbox
from ..events import bus
from ..events.payloads import interaction_callback, message_json
from ..kernel import sqlite_direct
from ..kernel.auth import Principal, require_scope
from ..kernel.db import db_value, fetch_dicts, model_from_row, placeholders
from ..kernel.recurring import Recurring
from ..kernel.errors import Conflict, Forbidden, NotFound, SwitchboardError, ValidationFailed
from ..kernel.timefmt import iso, utcnow
from ..kernel.transactions import atomic, in_atomic, on_commit
from ..kernel.waiters import Waiters
from ..models.chat import Conversation, Interaction, Message
from . import action_tokens, callbacks, messages, push, subscriptions
from .conversations import visible_sql
from .interactive_elements import check_answer, check_elements
from .validation import MAX_WAIT_SECONDS, check_outbound_url, check_wait

__all__ = [
    "send_interactive",
    "respond",
    "respond_with_token",
    "ask",
    "wait_settled",
    "withdraw",
    "get_message",
    "expire_due",
    "ExpiryClock",
    "MAX_WAIT_SECONDS",
    "MAX_EXPIRY",
    "MAX_ELEMENTS_BYTES",
]

log = logging.getLogger("switchboard.interactive")

# Every client receives an interactive message in full (events, history, sync pages).
MAX_ELEMENTS_BYTES = 64 * 1024
MAX_EXPIRY = timedelta(days=90)
_DEFAULT_CONTENT = {"boolean": "Approval requested", "buttons": "Choose an option", "fields": "Please fill in the form"}


class Expired(SwitchboardError):
    status, code, message = 410, "expired", "This interactive message has expired."


# ---------------------------------------------------------------- waiting


# By message id: the long-polls waiting on it, woken with the settled interaction, so a
# thousand waiters on one message cost no database read each.
_waiters: Waiters[Interaction] = Waiters()


def _settled(interaction: Interaction) -> None:
    _waiters.wake(interaction.message_id, interaction)


async def _settle_after_commit(interaction: Interaction) -> None:
    async def wake() -> None:
        _settled(interaction)

    await on_commit(wake)


# ---------------------------------------------------------------- send


def _content(elements: list[dict[str, Any]], action: str) -> str:
    """What clients without interactive support show: the header and text elements."""
    parts = [str(e["text"]) for e in elements if e["type"] in ("header", "text") and e.get("text")]
    text = "\n\n".join(parts) or _DEFAULT_CONTENT[action]
    return text if len(text) <= messages.MAX_CONTENT else text[: messages.MAX_CONTENT - 1] + "…"


async def send_interactive(
    principal: Principal,
    conversation_id: str,
    *,
    callback_url: str | None,
    callback_id: str | None,
    elements: Any,
    expires_at: datetime | None = None,
    allow_private: bool = False,
    callback_optional: bool = False,
) -> tuple[Message, Interaction]:
    """``callback_optional``: the asker may wait for the answer instead (the MCP tool
    ask_approval); without a callback URL no callback is sent."""
    target = await messages.agent_target(principal, conversation_id)  # who may send, and where
    checked, action = check_elements(elements)
    problems: dict[str, list[str]] = {}
    if len(json.dumps(checked, ensure_ascii=False)) > MAX_ELEMENTS_BYTES:
        problems["elements"] = [f"must be at most {MAX_ELEMENTS_BYTES} characters as JSON"]
    url = None
    try:
        url = await check_outbound_url("callback_url", callback_url, allow_private=allow_private)
    except ValidationFailed as exc:
        problems.update(exc.details)
    else:
        if url is None and not callback_optional:
            problems["callback_url"] = ["is required"]
    callback_id = (callback_id or "").strip()
    if (url is not None or not callback_optional) and not callback_id or len(callback_id) > 255:
        problems["callback_id"] = ["must be 1 to 255 characters"]
    now = utcnow()
    if expires_at is not None and not now < expires_at <= now + MAX_EXPIRY:
        problems["expires_at"] = [f"must be in the future and at most {MAX_EXPIRY.days} days ahead"]
    if problems:
        raise ValidationFailed(details=problems)
    if expires_at is not None:
        # Stored in UTC: SQLite compares the stored text, so every value needs the same offset.
        expires_at = expires_at.astimezone(timezone.utc)
    if url is not None:
        await callbacks.ensure_secret(target.organization_id)
    return await _create(
        target, checked, action, callback_url=str(url or ""), callback_id=callback_id, expires_at=expires_at, now=now
    )


async def send_and_wait(
    principal: Principal, conversation_id: str, *, wait: float, **send: Any
) -> tuple[Message, Interaction | None]:
    """Send an interactive message and wait up to ``wait`` seconds for its answer (the MCP
    tool ask_approval): both rights are checked before anything is sent."""
    if wait > 0:
        require_scope(principal, "conversations:read")
    check_wait(wait, "wait_seconds")
    message, interaction = await send_interactive(principal, conversation_id, **send)
    if wait <= 0:
        return message, interaction
    return await get_message(principal, message.id, wait=wait)


async def ask(target: messages.Target, elements: list[dict[str, Any]], *, expires_at: datetime) -> tuple[Message, Interaction]:
    """A question the gateway's own agent asks (a tool waiting for approval): no callback is
    sent; the asker waits with ``wait_settled``."""
    checked, action = check_elements(elements)
    return await _create(target, checked, action, callback_url="", callback_id="", expires_at=expires_at.astimezone(timezone.utc),
                         now=utcnow())


async def _create(
    target: messages.Target, checked: list[dict[str, Any]], action: str, *, callback_url: str, callback_id: str,
    expires_at: datetime | None, now: datetime,
) -> tuple[Message, Interaction]:
    async with atomic():
        interaction = Interaction(
            organization_id=target.organization_id,
            conversation_id=target.conversation_id,
            action_type=action,
            callback_url=callback_url,
            callback_id=callback_id,
            status="pending",
            expires_at=expires_at,
            created_at=now,
        )
        message = await messages.store_interactive(target, _content(checked, action), checked, interaction)
        interaction.message_id = message.id
        await interaction.save(force_create=True)
        if action in ("boolean", "buttons"):  # answerable from a notification
            await push.notify_interactive(target, message, interaction, checked)
    if expires_at is not None:
        ExpiryClock.nudge()
    return message, interaction


async def wait_settled(message_id: str, timeout: float) -> Interaction | None:
    """The interaction once answered or expired (or as it stands after ``timeout``). An
    answer recorded by this process wakes it at once; one recorded by another gateway
    process is seen within ``_RECHECK_SECONDS``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with _waiters.watch(message_id) as watch:
        while True:
            current = await Interaction.get_or_none(message_id=message_id)
            left = deadline - loop.time()
            if current is None or current.status != "pending" or left <= 0:
                return current
            try:
                return await watch.next(min(left, _RECHECK_SECONDS))
            except TimeoutError:
                continue


# ---------------------------------------------------------------- answer


_MESSAGE_COLUMNS = ("id", "conversation_id", "seq", "role", "content", "user_id", "external_message_id", "created_at", "kind", "elements")
_INTERACTION_COLUMNS = (
    "organization_id", "action_type", "callback_url", "callback_id", "status", "expires_at", "response",
    "responded_by_id", "responded_by_email", "responded_at", "created_at",
)
_FIND_SQL = (
    "SELECT " + ", ".join(f"m.{c}" for c in _MESSAGE_COLUMNS) + ", c.user_id AS owner_id, i.message_id AS i_message_id, "
    + ", ".join(f"i.{c} AS i_{c}" for c in _INTERACTION_COLUMNS)
    + " FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "LEFT JOIN interactions i ON i.message_id = m.id WHERE m.id = ?"
)


async def _find(principal: Principal, message_id: str) -> tuple[Message, Interaction | None, str]:
    """The message if the principal may see its conversation (else 404), its interaction,
    and the conversation's owner. One query on the hot path (answers, long-polls)."""
    where, visible = visible_sql(principal)
    rows = await fetch_dicts(_FIND_SQL + where, [message_id, *visible])
    if not rows:
        raise NotFound("Message not found.")
    row = rows[0]
    message = model_from_row(Message, {c: row[c] for c in _MESSAGE_COLUMNS})
    interaction = None
    if row["i_message_id"] is not None:
        interaction = model_from_row(
            Interaction,
            {"message_id": row["i_message_id"], "conversation_id": row["conversation_id"]}
            | {c: row[f"i_{c}"] for c in _INTERACTION_COLUMNS},
        )
    return message, interaction, str(row["owner_id"])


def _refusal(interaction: Interaction, now: datetime) -> SwitchboardError | None:
    if interaction.status == "responded":
        return Conflict(
            "This interactive message already has an answer.",
            code="already_responded",
            details={
                "response": interaction.response,
                "responded_by": {"user_id": interaction.responded_by_id, "email": interaction.responded_by_email},
                "responded_at": iso(interaction.responded_at),
            },
        )
    if interaction.status == "expired" or (interaction.expires_at is not None and interaction.expires_at <= now):
        return Expired(details={"expires_at": iso(interaction.expires_at)})
    return None


async def respond(principal: Principal, message_id: str, answer: Mapping[str, Any]) -> tuple[Message, Interaction]:
    """A person answers; exactly one answer is ever recorded."""
    require_scope(principal, "conversations:write")
    if principal.kind not in ("session", "action_token") or principal.user is None:
        raise Forbidden("Interactive messages are answered by a person, with a session token.")
    message, interaction, owner_id = await _find(principal, message_id)
    if interaction is None:
        raise NotFound("Interactive message not found.")
    now = utcnow()
    refusal = _refusal(interaction, now)
    if refusal is not None:
        raise refusal
    response = check_answer(list(message.elements or []), answer)
    user = principal.user
    interaction.status, interaction.response, interaction.responded_at = "responded", response, now
    interaction.responded_by_id, interaction.responded_by_email = user.id, user.email
    # Recorded and announced even if the caller goes away meanwhile (a client hanging up).
    await asyncio.shield(_settle(message, interaction, owner_id, now))
    return message, interaction


async def respond_with_token(token: str, message_id: str, answer: Mapping[str, Any]) -> tuple[Message, Interaction]:
    """An answer from a notification: the one-time action token stands for its person, for
    this message only, and is spent once it has answered (a refused answer, a 422 say,
    leaves it usable)."""
    principal, token_id = await action_tokens.redeem(token, message_id)
    result = await respond(principal, message_id, answer)
    await action_tokens.spend(token_id)
    return result


async def _settle(message: Message, interaction: Interaction, owner_id: str, now: datetime) -> None:
    items = [outbox.row(**_callback_fields(interaction))] if interaction.callback_url else []
    announced = await _subscribed(message, interaction, "interactive.responded")
    conn = connections.get("default")
    if conn.capabilities.dialect == "sqlite" and not in_atomic():
        # Answers arriving together share one transaction (each in its own savepoint).
        won = await _sqlite_answers.submit((interaction, items, announced, now))
    else:
        async with atomic() as conn:
            won = await _record_answer(conn, interaction, items, announced, now)
    if not won:
        current = await Interaction.get(message_id=message.id)
        raise _refusal(current, now) or Expired()
    await outbox.wake_after_commit()
    await _announce(message, interaction, owner_id)


_ANSWER_SQL = (
    "UPDATE interactions SET status = 'responded', response = ?, responded_by_id = ?, responded_by_email = ?, "
    "responded_at = ? WHERE message_id = ? AND status = 'pending' AND (expires_at IS NULL OR expires_at > ?)"
)


def _answer_values(interaction: Interaction, now: datetime) -> list[Any]:
    return [
        db_value(Interaction, "response", interaction.response),
        interaction.responded_by_id,
        interaction.responded_by_email,
        db_value(Interaction, "responded_at", now),
        interaction.message_id,
        db_value(Interaction, "expires_at", now),
    ]


Announced = list[tuple[subscriptions.Pending, Mapping[str, Any]]]


async def _record_answer(
    conn: Any, interaction: Interaction, items: list[dict[str, Any]], announced: Announced, now: datetime
) -> bool:
    """Any backend, in the caller's transaction: the conditional update, then its outbox
    items (the callback, the event subscriptions' deliveries)."""
    dialect = conn.capabilities.dialect
    count, _ = await conn.execute_query(placeholders(dialect, _ANSWER_SQL), _answer_values(interaction, now))
    if not count:
        return False
    for item in items + _rows(announced):
        await outbox.write(conn.execute_query, item, dialect=dialect)
    return True


def _record_answer_sqlite(
    db: sqlite3.Connection, answer: tuple[Interaction, list[dict[str, Any]], Announced, datetime]
) -> bool:
    interaction, items, announced, now = answer
    if not db.execute(_ANSWER_SQL, _answer_values(interaction, now)).rowcount:
        return False
    for item in items + _rows(announced):
        outbox.write(db.execute, item)
    return True


async def _subscribed(message: Message, interaction: Interaction, event: str) -> Announced:
    """The event subscriptions' deliveries of a settled interaction: ``message.updated`` and
    ``event``, both carrying the message as the socket event shows it. Their rows are made
    inside the write (``_rows``), so their order among the conversation's events is the
    order of the commits."""
    data = message_json(message, interaction)
    out: Announced = []
    for name in ("message.updated", event):
        found = await subscriptions.pending(interaction.organization_id, name, interaction.conversation_id)
        if found is not None:
            out.append((found, data))
    return out


def _rows(announced: Announced) -> list[dict[str, Any]]:
    return [row for pending, data in announced for row in pending.rows(data)]


_sqlite_answers = sqlite_direct.GroupCommit(_record_answer_sqlite)


def _callback_fields(interaction: Interaction) -> dict[str, Any]:
    """The outbox item of the interaction's callback, as it stands now (``outbox.row``'s
    arguments)."""
    return {
        "organization_id": interaction.organization_id,
        "channel": "callback",
        "kind": "interactive_callback",
        "event": "interactive.responded" if interaction.status == "responded" else "interactive.expired",
        "target": interaction.callback_url,
        "payload": interaction_callback(interaction),
        "secret_ref": callbacks.secret_ref(interaction.organization_id),
        "conversation_id": interaction.conversation_id,
        "message_id": interaction.message_id,
    }


async def _announce(message: Message, interaction: Interaction, owner_id: str) -> None:
    """Once settled: ``message.updated`` to the conversation, the waiters woken (both after
    the commit when called inside a transaction)."""
    await _settle_after_commit(interaction)
    await bus.emit_on_commit(
        "message.updated", bus.conversation_rooms(interaction.conversation_id, owner_id), message_json(message, interaction)
    )


# ---------------------------------------------------------------- read and wait


async def get_message(
    principal: Principal, message_id: str, *, wait: float = 0
) -> tuple[Message, Interaction | None]:
    """The message with its interaction; with ``wait``, once it is settled or after ``wait``
    seconds, whichever comes first."""
    require_scope(principal, "conversations:read")
    check_wait(wait, "wait")
    message, interaction, _ = await _find(principal, message_id)
    if interaction is None or interaction.status != "pending" or wait <= 0:
        return message, interaction
    with _waiters.watch(message.id) as watch:
        # Re-read once watched: an answer committed in between must not be missed.
        await interaction.refresh_from_db()
        if interaction.status == "pending":
            timeout = wait
            if interaction.expires_at is not None:
                timeout = min(timeout, max(0.0, (interaction.expires_at - utcnow()).total_seconds()) + 1)
            try:
                interaction = await watch.next(timeout)
            except TimeoutError:
                await interaction.refresh_from_db()  # settled by another process, perhaps
    return message, interaction


# ---------------------------------------------------------------- expiry


_RECHECK_SECONDS = 2.0


async def withdraw(message_id: str) -> None:
    """Expire a pending question now: whoever asked it no longer waits for the answer."""
    interaction = await Interaction.get_or_none(message_id=message_id, status="pending")
    if interaction is not None:
        await _expire(interaction)


async def expire_due(limit: int = 200) -> int:
    """Expire pending interactions whose time has passed; one callback each."""
    now = utcnow()
    due = await Interaction.filter(status="pending", expires_at__lte=now).order_by("expires_at").limit(limit)
    done = 0
    for interaction in due:
        try:
            done += await _expire(interaction)
        except Exception:  # noqa: BLE001 - one bad row must not stop every later expiry
            log.exception("interactive: could not expire %s", interaction.message_id)
    return done


async def _expire(interaction: Interaction) -> int:
    async with atomic():
        if not await Interaction.filter(message_id=interaction.message_id, status="pending").update(status="expired"):
            return 0  # answered (or expired elsewhere) meanwhile
        interaction.status = "expired"
        # The automation waits for an answer even when the conversation is gone (its agent
        # was deleted): it hears "expired" either way.
        if interaction.callback_url:
            await outbox.enqueue(**_callback_fields(interaction))
        message = await Message.get_or_none(id=interaction.message_id)
        owner = await Conversation.filter(id=interaction.conversation_id).values_list("user_id", flat=True)
        if message is not None and owner:
            await _announce(message, interaction, str(owner[0]))
            await outbox.enqueue_rows(_rows(await _subscribed(message, interaction, "interactive.expired")))
        else:
            await _settle_after_commit(interaction)
    return 1


async def next_expiry() -> datetime | None:
    row = await Interaction.filter(status="pending", expires_at__isnull=False).order_by("expires_at").first()
    return row.expires_at if row is not None else None


class ExpiryClock(Recurring):
    """Runs ``expire_due`` when the next pending interaction is due (and at start);
    ``ExpiryClock.nudge()`` after a new deadline (it may be sooner than the one waited for)."""

    def __init__(self) -> None:
        super().__init__("interactive-expiry", expire_due, next_due=next_expiry)
