"""The outbox worker: claims due items and hands each to its channel's adapter.

Rules, the same for every channel:

* Items sharing an ``ordering_key`` go out one at a time, in ``ordering_seq`` order: only
  the oldest unfinished item of a key is ever due.
* A ``retry`` result is tried again with exponential backoff and jitter (or after the
  channel's ``retry_after``) until ``max_age`` has passed since ``window_start``; ``failed``
  and ``gone`` are final. Listeners registered in ``registry`` hear of final failures.
* Claiming sets ``status='delivering'`` and pushes ``next_attempt_at`` one lease ahead; a
  worker that dies leaves its items due again when the lease runs out, so a restart (or
  another instance) resumes them. A graceful stop waits for in-flight calls and records
  them, so an acknowledged delivery is not sent again.
* Who signs (and, when it changed, where it goes) is resolved at attempt time from
  ``secret_ref`` by the resolver registered for its prefix. An item whose recipient no
  longer exists is cancelled, never sent unsigned. Held items (``holds``) are not claimed.
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
from typing import Any

from quart import Quart
from tortoise import connections

import channels
from channels.base import Channel, DeliveryResult, Outbound

from ..kernel import crypto
from ..kernel.config import Settings
from ..kernel.db import db_value, placeholders as _sql, unindexed
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.chat import DeliveryAttempt
from . import registry
from .registry import Recipient
from .writer import sealed_owner

__all__ = ["OutboxWorker", "install", "cancel", "backoff_seconds"]

log = logging.getLogger("switchboard.outbox")

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 3600.0
RETRY_AFTER_CAP_SECONDS = 6 * 3600.0
IDLE_POLL_SECONDS = 1.0
LEASE_MARGIN_SECONDS = 30.0

_UNFINISHED = "('pending', 'delivering')"
_NOT_HELD = "({t}.hold_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox_holds h WHERE h.key = {t}.hold_key))"


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
    def __init__(self, settings: Settings, channels_by_name: dict[str, Channel]) -> None:
        self.settings = settings
        self.channels = channels_by_name
        self.concurrency = max(1, settings.outbox_concurrency)
        self.max_age = timedelta(seconds=settings.webhook_max_age_seconds)
        slowest = max([c.timeout for c in channels_by_name.values()] or [settings.webhook_timeout_seconds])
        self.lease = timedelta(seconds=slowest + LEASE_MARGIN_SECONDS)
        self._grace = slowest + 1
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
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=self._grace if grace is None else grace)
        for task in list(self._inflight):
            task.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush(), timeout=5)
        except Exception:  # noqa: BLE001 - leases make unrecorded items due again later
            log.exception("outbox: could not record the last results")
        for name, channel in self.channels.items():
            try:
                await asyncio.wait_for(channel.close(), timeout=2)
            except Exception:  # noqa: BLE001 - closing idle connections must not block shutdown
                log.warning("outbox: channel %s did not close cleanly", name, exc_info=True)

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
        channel = self.channels.get(outbound.channel)
        if channel is None:
            result = DeliveryResult("retry", error=f"channel '{outbound.channel}' is not configured on this server")
        else:
            try:
                # Bounded here too: an attempt that outlived its lease could be claimed and
                # sent again while it is still going.
                async with asyncio.timeout(channel.timeout + 1):  # a timer, not a task per attempt
                    result = await channel.deliver(outbound)
            except asyncio.TimeoutError:
                result = DeliveryResult("retry", error=f"timeout: no answer within {channel.timeout:g} s")
            except Exception as exc:  # noqa: BLE001 - a channel bug is a failed attempt, not a crash
                log.exception("outbox: channel %s raised for %s", outbound.channel, item["id"])
                result = DeliveryResult("retry", error=f"internal error: {exc}")
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
                f"SELECT o.id FROM outbox o WHERE o.status IN {_UNFINISHED} "
                f"AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox p "
                f"WHERE p.ordering_key = o.ordering_key AND p.status IN {_UNFINISHED} "
                f"AND p.ordering_seq < o.ordering_seq) AND {_NOT_HELD.format(t='o')} "
                f"ORDER BY o.next_attempt_at LIMIT ?",
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
                f"AND {unindexed(dialect, 'status')} IN {_UNFINISHED} AND next_attempt_at <= ? "
                f"AND {_NOT_HELD.format(t='outbox')} "
                f"RETURNING id, organization_id, channel, kind, event, target, body, headers, secret_ref, attempts, "
                f"window_start, conversation_id, agent_id, message_id, group_id",
            ),
            [now + self.lease, now, *ids, now],
        )
        recipients = await _recipients([r["secret_ref"] for r in claimed if r["secret_ref"]])
        out, gone = [], []
        for row in claimed:
            recipient = recipients.get(row["secret_ref"]) if row["secret_ref"] else None
            if row["secret_ref"] and recipient is None:
                gone.append(row["id"])  # never send it unsigned, or to a target nobody owns
                continue
            if recipient is not None and recipient.error:
                self._done.append(_Done(row, DeliveryResult("retry", error=recipient.error), now))
                self.wake()  # recorded on the next turn of the loop
                continue
            if recipient is not None and recipient.target:
                # What this attempt goes to, for the channel and the listeners; recorded on
                # the row only when it may be shown (a webhook URL, not a device token).
                row["sent_to"] = recipient.target
                if recipient.record_target:
                    row["target"] = recipient.target
            headers = row["headers"]
            if isinstance(headers, str):
                headers = json.loads(headers)
            body = row["body"]
            if crypto.is_encrypted(body):
                try:
                    body = crypto.decrypt(body, sealed_owner(row["id"]))
                except crypto.CryptoError:
                    error = "sealed body cannot be decrypted (check SWITCHBOARD_SECRET_KEY)"
                    self._done.append(_Done(row, DeliveryResult("retry", error=error), now))
                    self.wake()
                    continue
            outbound = Outbound(
                delivery_id=row["id"],
                channel=row["channel"],
                event=row["event"],
                target=row.get("sent_to", row["target"]),
                body=body.encode() if isinstance(body, str) else bytes(body),
                secrets=recipient.secrets if recipient else (),
                headers={**(recipient.headers if recipient else {}), **(headers or {})},
            )
            out.append((row, outbound))
        if gone:
            await cancel(gone, "cancelled: the recipient no longer exists")
        return out

    def _decide(self, done: _Done) -> tuple[str, datetime | None]:
        """(status, next_attempt_at) after an attempt."""
        result = done.result
        if result.outcome == "delivered":
            return "succeeded", None
        if result.outcome in ("failed", "gone"):
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
        now = utcnow()
        decisions = [(d, *self._decide(d)) for d in batch]
        succeeded: list[tuple[int | None, str, str]] = []
        async with atomic() as conn:
            dialect = conn.capabilities.dialect
            await conn.execute_many(_sql(dialect, _ATTEMPT_SQL), [
                [
                    d.item["id"],
                    int(d.item["attempts"]),
                    _attempt_outcome(d.result, status),
                    d.result.status_code,
                    d.result.latency_ms,
                    d.result.error,
                    db_value(DeliveryAttempt, "attempted_at", d.attempted_at),
                ]
                for d, status, _ in decisions
            ])
            for d, status, next_at in decisions:
                if status == "succeeded":
                    succeeded.append((d.result.status_code, d.item["target"], d.item["id"]))
                    continue
                if next_at is not None and (
                    self._next_due is None or next_at < self._next_due or self._next_due < now
                ):
                    self._next_due = next_at
                count, _ = await conn.execute_query(
                    _sql(
                        dialect,
                        "UPDATE outbox SET status = ?, next_attempt_at = ?, last_status_code = ?, "
                        "last_error = ?, target = ?, updated_at = ?, completed_at = ? "
                        "WHERE id = ? AND status = 'delivering'",
                    ),
                    [
                        status,
                        next_at or now,
                        d.result.status_code,
                        d.result.error,
                        d.item["target"],
                        now,
                        now if status == "failed" else None,
                        d.item["id"],
                    ],
                )
                if status == "failed" and count:
                    await _tell(d)
            if succeeded:
                # One statement run many times: a batch's successes cost one round trip.
                await conn.execute_many(
                    _sql(
                        dialect,
                        "UPDATE outbox SET status = 'succeeded', last_status_code = ?, last_error = NULL, target = ?, "
                        "updated_at = ?, completed_at = ? WHERE id = ? AND status = 'delivering'",
                    ),
                    [[code, target, now, now, item_id] for code, target, item_id in succeeded],
                )
            await _report(decisions)
        registry.attempted([d.item["id"] for d in batch])


# Hand-written: building a model per attempt cost more than inserting it.
_ATTEMPT_SQL = (
    "INSERT INTO delivery_attempts (delivery_id, number, outcome, status_code, latency_ms, error, attempted_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _attempt_outcome(result: DeliveryResult, status: str) -> str:
    if result.outcome == "gone":
        return "gone"
    return "retry" if status == "pending" else status


async def _report(decisions: list[tuple[_Done, str, datetime | None]]) -> None:
    """Each kind's recorders, with that kind's attempts in the batch (in its transaction)."""
    recorders = registry.recorders()
    if not recorders:
        return
    by_kind: dict[str, list[tuple[dict[str, Any], DeliveryResult, str]]] = {}
    for d, status, _ in decisions:
        if d.item.get("kind") in recorders:
            by_kind.setdefault(d.item["kind"], []).append((d.item, d.result, status))
    for kind, attempts in by_kind.items():
        for recorder in recorders[kind]:
            try:
                async with atomic():  # a savepoint: a failing recorder undoes only its own writes
                    await recorder(attempts)
            except Exception:  # noqa: BLE001 - bookkeeping must not keep attempts from being recorded
                log.exception("outbox: a recorder of %s items failed", kind)


async def _tell(done: _Done) -> None:
    """Final failure: the listeners, in the recording transaction."""
    listeners = registry.failed_listeners()
    if done.result.outcome == "gone":
        listeners = registry.gone_listeners(done.item["channel"]) + listeners
    for listener in listeners:
        await listener(done.item, done.result)


async def _recipients(refs: list[str]) -> dict[str, Recipient]:
    by_prefix: dict[str, list[str]] = {}
    for ref in set(refs):
        prefix, _, ident = ref.partition(":")
        by_prefix.setdefault(prefix, []).append(ident)
    out: dict[str, Recipient] = {}
    for prefix, ids in by_prefix.items():
        resolver = registry.resolver_for(prefix)
        if resolver is None:
            log.error("outbox: no resolver for %r", prefix)
            continue
        for ident, value in (await resolver(ids)).items():
            out[f"{prefix}:{ident}"] = value
    return out


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
            f"WHERE id IN ({marks}) AND {unindexed(conn.capabilities.dialect, 'status')} IN {_UNFINISHED}",
        ),
        [reason, now, now, *ids],
    )
    return int(count or 0)


def install(app: Quart) -> None:
    """Run the outbox worker, with every configured channel, while the app serves."""

    async def start(app: Quart) -> None:
        settings: Settings = app.config["SETTINGS"]
        worker = OutboxWorker(settings, channels.build(settings))
        app.extensions["outbox"] = worker
        registry.set_worker(worker)
        worker.start()

    async def stop(app: Quart) -> None:
        worker: OutboxWorker | None = app.extensions.get("outbox")
        if worker is None:
            return
        registry.clear_worker(worker)
        await worker.stop()

    app.extensions["startup"].append(start)
    app.extensions["shutdown"].append(stop)
