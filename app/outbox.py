"""The durable outbox: every call that leaves the machine.

``enqueue`` writes an ``OutboxItem`` in the caller's transaction and wakes the worker after
the commit. The worker claims due items, delivers them through a channel, and records
every attempt. Rules:

* Items sharing an ``ordering_key`` (a conversation) go out one at a time, in
  ``ordering_seq`` order: only the oldest unfinished item of a key is ever due.
* Timeouts, connection errors, 408/425/429 and 5xx are retried with exponential backoff and
  jitter (or after ``Retry-After``) until ``max_age`` has passed since ``window_start``;
  any other 4xx fails at once. A failed item linked to a conversation emits
  ``delivery.failed`` to its room.
* Claiming sets ``status='delivering'`` and pushes ``next_attempt_at`` one lease ahead; a
  worker that dies leaves its items due again when the lease runs out, so a restart (or
  another instance) resumes them. A graceful stop waits for in-flight calls and records
  them, so an acknowledged delivery is not sent again.
* Who receives and signs is resolved at attempt time from ``secret_ref`` (``agent:agt_...``):
  the agent's current secrets and, for ``agent_webhook`` items, its current URL. An item
  whose recipient no longer exists is cancelled, never sent unsigned. Items of a disabled
  agent are held (not claimed, no attempts spent) until it is enabled again.
* ``cancelled`` is final, like ``succeeded`` and ``failed``; recording an attempt never
  overwrites it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from quart import Quart
from tortoise import connections

from channels.base import Channel, DeliveryResult, Outbound
from channels.webhook import WebhookChannel

from . import realtime
from .config import Settings
from .db import placeholders as _sql
from .ids import new_id
from .models.chat import DeliveryAttempt, OutboxItem
from .timefmt import iso, utcnow
from .transactions import on_commit

__all__ = [
    "enqueue",
    "build_row",
    "insert_sql",
    "after_commit",
    "install",
    "OutboxWorker",
    "Recipient",
    "register_recipient_resolver",
    "cancel",
    "backoff_seconds",
    "wake",
]

log = logging.getLogger("switchboard.outbox")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 3600.0
RETRY_AFTER_CAP_SECONDS = 6 * 3600.0
IDLE_POLL_SECONDS = 1.0
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Recipient:
    """Who an item goes to, as of this attempt."""

    secrets: tuple[str, ...]  # newest first
    urls: dict[str, str]  # item kind -> URL that replaces the stored one (e.g. agent_webhook)
    error: str | None = None  # set when it cannot be signed now: a retryable failed attempt


# secret_ref prefix ("agent") -> async fn(list of ids) -> {id: Recipient}; a missing id means
# the recipient is gone.
RecipientResolver = Callable[[list[str]], Awaitable[dict[str, Recipient]]]
_resolvers: dict[str, RecipientResolver] = {}
_worker: "OutboxWorker | None" = None

# Items of a disabled agent wait; they are not claimed (the join is by primary key).
_NOT_HELD = "NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = {t}.agent_id AND NOT a.enabled)"


def register_recipient_resolver(prefix: str, resolver: RecipientResolver) -> None:
    _resolvers[prefix] = resolver


def wake() -> None:
    if _worker is not None:
        _worker.wake()


async def _wake_after_commit() -> None:
    wake()


def build_row(
    *,
    organization_id: str,
    kind: str,
    event: str,
    url: str,
    payload: dict[str, Any],
    ordering_key: str,
    ordering_seq: int = 0,
    secret_ref: str | None = None,
    headers: dict[str, str] | None = None,
    agent_id: str | None = None,
    conversation_id: str | None = None,
    message_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The outbox row for one delivery, as column -> value (written by ``enqueue``, or by a
    caller that writes its own rows in the same transaction)."""
    now = now or utcnow()
    return {
        "id": new_id("delivery"),
        "organization_id": organization_id,
        "kind": kind,
        "event": event,
        "url": url,
        "body": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        "headers": json.dumps(headers or {}, separators=(",", ":")),
        "secret_ref": secret_ref,
        "ordering_key": ordering_key,
        "ordering_seq": ordering_seq,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "window_start": now,
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "message_id": message_id,
        "created_at": now,
        "updated_at": now,
    }


async def enqueue(**fields: Any) -> str:
    """Queue one delivery inside the current transaction; it goes out after the commit.
    Takes ``build_row``'s arguments; returns the delivery id."""
    row = build_row(**fields)
    conn = connections.get("default")
    sql, values = insert_sql("outbox", row)
    await conn.execute_query(_sql(conn.capabilities.dialect, sql), values)
    await after_commit()
    return str(row["id"])


async def after_commit() -> None:
    """Wake the worker once the surrounding transaction commits."""
    await on_commit(_wake_after_commit)


def insert_sql(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: about 1 s, 2 s, 4 s ... capped at an hour."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return float(ceiling * random.uniform(0.5, 1.0))


@dataclass
class _Done:
    item: dict[str, Any]
    result: DeliveryResult
    attempted_at: datetime


class OutboxWorker:
    def __init__(self, settings: Settings, channel: Channel) -> None:
        self.settings = settings
        self.channel = channel
        self.concurrency = max(1, settings.outbox_concurrency)
        self.max_age = timedelta(seconds=settings.webhook_max_age_seconds)
        self.lease = timedelta(seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        self._event = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._done: list[_Done] = []
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._next_due: datetime | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="outbox-worker")

    def wake(self) -> None:
        self._event.set()

    async def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let in-flight calls finish and record them, then stop."""
        self._stopping = True
        self.wake()
        grace = self.settings.webhook_timeout_seconds + 1 if grace is None else grace
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        for task in list(self._inflight):
            task.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush(), timeout=5)
        except Exception:  # noqa: BLE001 - leases make unrecorded items due again later
            log.exception("outbox: could not record the last results")
        try:
            await asyncio.wait_for(self.channel.close(), timeout=2)
        except Exception:  # noqa: BLE001 - closing idle connections must not block shutdown
            log.warning("outbox: channel did not close cleanly", exc_info=True)

    # ------------------------------------------------------------ the loop

    async def _run(self) -> None:
        while not self._stopping:
            self._event.clear()
            try:
                await self._flush()
                free = self.concurrency - len(self._inflight)
                claimed = await self._claim(free) if free > 0 else []
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
                log.exception("outbox: claim or record failed")
                claimed = []
                await asyncio.sleep(IDLE_POLL_SECONDS)
            for item, outbound in claimed:
                task = asyncio.create_task(self._deliver(item, outbound), name=f"delivery-{item['id']}")
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if claimed and len(claimed) == free:
                continue  # there may be more due work; a finishing delivery wakes us anyway
            timeout = IDLE_POLL_SECONDS
            if self._next_due is not None:
                timeout = max(0.0, min(timeout, (self._next_due - utcnow()).total_seconds()))
            try:
                await asyncio.wait_for(self._event.wait(), timeout=timeout)
            except asyncio.TimeoutError:
                pass

    async def _deliver(self, item: dict[str, Any], outbound: Outbound) -> None:
        attempted_at = utcnow()
        try:
            result = await self.channel.deliver(outbound)
        except Exception as exc:  # noqa: BLE001 - a channel bug is a failed attempt, not a crash
            log.exception("outbox: channel raised for %s", item["id"])
            result = DeliveryResult(ok=False, status_code=None, latency_ms=0, error=f"internal error: {exc}", retryable=True)
        self._done.append(_Done(item, result, attempted_at))
        self.wake()

    # ------------------------------------------------------------ database

    async def _claim(self, limit: int) -> list[tuple[dict[str, Any], Outbound]]:
        conn = connections.get("default")
        dialect = conn.capabilities.dialect
        now = utcnow()
        rows = await conn.execute_query_dict(
            _sql(
                dialect,
                "SELECT o.id FROM outbox o WHERE o.status IN ('pending', 'delivering') "
                "AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox p "
                "WHERE p.ordering_key = o.ordering_key AND p.status IN ('pending', 'delivering') "
                "AND p.ordering_seq < o.ordering_seq) AND " + _NOT_HELD.format(t="o") + " "
                "ORDER BY o.next_attempt_at LIMIT ?",
            ),
            [now, limit],
        )
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ", ".join("?" for _ in ids)
        claimed = await conn.execute_query_dict(
            _sql(
                dialect,
                f"UPDATE outbox SET status = 'delivering', attempts = attempts + 1, "
                f"next_attempt_at = ?, updated_at = ? WHERE id IN ({marks}) "
                f"AND status IN ('pending', 'delivering') AND next_attempt_at <= ? "
                f"AND {_NOT_HELD.format(t='outbox')} "
                f"RETURNING id, kind, event, url, body, headers, secret_ref, attempts, window_start, "
                f"conversation_id, agent_id, message_id",
            ),
            [now + self.lease, now, *ids, now],
        )
        recipients = await self._recipients([r["secret_ref"] for r in claimed if r["secret_ref"]])
        out, gone = [], []
        for row in claimed:
            recipient = recipients.get(row["secret_ref"]) if row["secret_ref"] else None
            if row["secret_ref"] and recipient is None:
                gone.append(row["id"])  # never send it unsigned, or to a URL nobody owns
                continue
            if recipient is not None and recipient.error:
                result = DeliveryResult(ok=False, status_code=None, latency_ms=0, error=recipient.error, retryable=True)
                self._done.append(_Done(row, result, now))
                self.wake()  # recorded on the next turn of the loop
                continue
            headers = row["headers"]
            if isinstance(headers, str):
                headers = json.loads(headers)
            body = row["body"]
            url = (recipient.urls.get(row["kind"]) if recipient else None) or row["url"]
            row["url"] = url
            outbound = Outbound(
                delivery_id=row["id"],
                event=row["event"],
                url=url,
                body=body.encode() if isinstance(body, str) else bytes(body),
                secrets=recipient.secrets if recipient else (),
                headers=dict(headers or {}),
            )
            out.append((row, outbound))
        if gone:
            await cancel(gone, "cancelled: the recipient no longer exists")
        return out

    async def _recipients(self, refs: list[str]) -> dict[str, Recipient]:
        by_prefix: dict[str, list[str]] = {}
        for ref in set(refs):
            prefix, _, ident = ref.partition(":")
            by_prefix.setdefault(prefix, []).append(ident)
        out: dict[str, Recipient] = {}
        for prefix, ids in by_prefix.items():
            resolver = _resolvers.get(prefix)
            if resolver is None:
                log.error("outbox: no recipient resolver for %r", prefix)
                continue
            for ident, value in (await resolver(ids)).items():
                out[f"{prefix}:{ident}"] = value
        return out

    def _decide(self, done: _Done) -> tuple[str, datetime | None]:
        """(status, next_attempt_at) after an attempt."""
        result = done.result
        if result.ok:
            return "succeeded", None
        if not result.retryable:
            return "failed", None
        attempt = int(done.item["attempts"])
        delay = backoff_seconds(attempt)
        if result.retry_after is not None:
            delay = min(max(result.retry_after, 0.0), RETRY_AFTER_CAP_SECONDS)
        when = utcnow() + timedelta(seconds=delay)
        window_start = done.item["window_start"]
        if isinstance(window_start, str):
            window_start = datetime.fromisoformat(window_start)
        if when > window_start + self.max_age:
            return "failed", None
        return "pending", when

    async def _flush(self) -> None:
        if not self._done:
            return
        batch, self._done = self._done, []
        try:
            await self._record(batch)
        except BaseException:
            self._done = batch + self._done
            raise

    async def _record(self, batch: list[_Done]) -> None:
        from .transactions import atomic

        now = utcnow()
        decisions = [(d, *self._decide(d)) for d in batch]
        succeeded: dict[tuple[int | None, str], list[str]] = {}
        async with atomic() as conn:
            dialect = conn.capabilities.dialect
            await DeliveryAttempt.bulk_create(
                [
                    DeliveryAttempt(
                        delivery_id=d.item["id"],
                        number=int(d.item["attempts"]),
                        outcome="retry" if status == "pending" else status,
                        status_code=d.result.status_code,
                        latency_ms=d.result.latency_ms,
                        error=d.result.error,
                        attempted_at=d.attempted_at,
                    )
                    for d, status, _ in decisions
                ]
            )
            for d, status, next_at in decisions:
                if status == "succeeded":
                    succeeded.setdefault((d.result.status_code, d.item["url"]), []).append(d.item["id"])
                    continue
                if next_at is not None and (
                    self._next_due is None or next_at < self._next_due or self._next_due < now
                ):
                    self._next_due = next_at
                await conn.execute_query(
                    _sql(
                        dialect,
                        "UPDATE outbox SET status = ?, next_attempt_at = ?, last_status_code = ?, "
                        "last_error = ?, url = ?, updated_at = ?, completed_at = ? "
                        "WHERE id = ? AND status = 'delivering'",
                    ),
                    [
                        status,
                        next_at or now,
                        d.result.status_code,
                        d.result.error,
                        d.item["url"],
                        now,
                        now if status == "failed" else None,
                        d.item["id"],
                    ],
                )
                if status == "failed" and d.item.get("conversation_id"):
                    await _emit_failed(d.item, d.result)
            for (code, url), ids in succeeded.items():
                marks = ", ".join("?" for _ in ids)
                await conn.execute_query(
                    _sql(
                        dialect,
                        f"UPDATE outbox SET status = 'succeeded', last_status_code = ?, last_error = NULL, url = ?, "
                        f"updated_at = ?, completed_at = ? WHERE id IN ({marks}) AND status = 'delivering'",
                    ),
                    [code, url, now, now, *ids],
                )


async def cancel(ids: list[str], reason: str) -> int:
    """Finish unfinished items without sending them (they stay in the delivery log)."""
    if not ids:
        return 0
    conn = connections.get("default")
    now = utcnow()
    marks = ", ".join("?" for _ in ids)
    count, _ = await conn.execute_query(
        _sql(
            conn.capabilities.dialect,
            f"UPDATE outbox SET status = 'cancelled', last_error = ?, updated_at = ?, completed_at = ? "
            f"WHERE id IN ({marks}) AND status IN ('pending', 'delivering')",
        ),
        [reason, now, now, *ids],
    )
    return int(count or 0)


async def _emit_failed(item: dict[str, Any], result: DeliveryResult) -> None:
    from .models.chat import Conversation

    owner = await Conversation.filter(id=item["conversation_id"]).values_list("user_id", flat=True)
    if not owner:
        return
    await realtime.emit_on_commit(
        "delivery.failed",
        realtime.conversation_rooms(item["conversation_id"], str(owner[0])),
        {
            "delivery_id": item["id"],
            "event": item["event"],
            "conversation_id": item["conversation_id"],
            "agent_id": item.get("agent_id"),
            "message_id": item.get("message_id"),
            "attempts": int(item["attempts"]),
            "status_code": result.status_code,
            "error": result.error,
            "failed_at": iso(utcnow()),
        },
    )


def install(app: Quart) -> None:
    """Run the outbox worker while the app serves."""

    async def start(app: Quart) -> None:
        global _worker
        settings: Settings = app.config["SETTINGS"]
        channel = WebhookChannel(
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.allow_private_webhooks,
            max_connections=settings.outbox_concurrency,
        )
        worker = OutboxWorker(settings, channel)
        app.extensions["outbox"] = worker
        _worker = worker
        worker.start()

    async def stop(app: Quart) -> None:
        global _worker
        worker: OutboxWorker | None = app.extensions.get("outbox")
        if worker is None:
            return
        if _worker is worker:
            _worker = None
        await worker.stop()

    app.extensions["startup"].append(start)
    app.extensions["shutdown"].append(stop)
