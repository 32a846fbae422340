"""Hot-path SQL on SQLite without the worker-thread hop.

tortoise runs every SQLite statement on aiosqlite's thread behind one asyncio lock, so each
statement costs two thread hand-offs (and GIL waits) while the lock is held: a message's
auth lookup, conversation read and write spent more time crossing threads than in SQLite.
Here the same database file gets a second connection owned by the event loop's thread, and
the few hot statements (indexed reads, the one-transaction message write) run on it directly:
tens of microseconds each.

Rules that keep this safe next to tortoise's connection:

* Writes hold tortoise's own lock, so no tortoise statement or transaction is open on the
  other connection meanwhile: there is still one writer at a time in this process.
* ``busy_timeout`` is 0: the loop never sleeps on another process's lock. A busy database
  raises ``sqlite3.OperationalError`` and the caller's work is redone on tortoise's thread,
  which waits as it always did.
* Only used outside a transaction (a read must see the caller's own uncommitted writes) and
  for a file database (``:memory:`` is private to its connection). PostgreSQL never comes
  here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, Callable, Generic, TypeVar

from tortoise import connections
from tortoise.backends.sqlite.client import SqliteClient
from tortoise.exceptions import IntegrityError

__all__ = ["fetch_dicts", "transaction", "GroupCommit", "close"]

T = TypeVar("T")

# The client the cached connection belongs to; a new tortoise init (tests) opens a new one.
_owner: SqliteClient | None = None
_db: sqlite3.Connection | None = None


def _direct() -> tuple[SqliteClient, sqlite3.Connection] | None:
    global _owner, _db
    client = connections.get("default")
    # Exactly the base client: inside a transaction tortoise hands out a wrapper subclass.
    if type(client) is not SqliteClient or client.filename in (":memory:", "") or client._connection is None:
        return None
    if _owner is not client or _db is None:
        close()
        db = sqlite3.connect(client.filename, isolation_level=None, timeout=0)
        db.row_factory = sqlite3.Row
        for pragma, value in client.pragmas.items():
            if pragma != "journal_mode":  # persistent in the file; set by tortoise's connection
                db.execute(f"PRAGMA {pragma}={value}")
        _owner, _db = client, db
    return client, _db


def close() -> None:
    global _owner, _db
    if _db is not None:
        _db.close()
    _owner, _db = None, None


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


async def fetch_dicts(sql: str, values: list[Any]) -> list[dict[str, Any]] | None:
    """Rows as dicts, read on the loop's thread; None when this path does not apply (the
    caller then reads through tortoise)."""
    direct = _direct()
    if direct is None:
        return None
    direct[0].log.debug("%s: %s", sql, values)  # the logger tortoise's own statements use
    try:
        return [dict(row) for row in direct[1].execute(sql, values)]
    except sqlite3.OperationalError as exc:
        if _busy(exc):
            return None
        raise


async def transaction(fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(connection)`` — which opens, commits or rolls back its own transaction — on
    the loop's thread under tortoise's lock, else on tortoise's thread (busy database, or no
    direct connection). ``sqlite3.IntegrityError`` becomes tortoise's ``IntegrityError``."""
    direct = _direct()
    try:
        if direct is not None:
            client, db = direct
            async with client._lock:
                try:
                    return fn(db)
                except sqlite3.OperationalError as exc:
                    if not _busy(exc):
                        raise
            # Another process holds the write lock: wait for it off the loop.
        client = connections.get("default")
        async with client.acquire_connection() as connection:
            return await connection._execute(fn, connection._conn)  # type: ignore[no-any-return]
    except sqlite3.IntegrityError as exc:
        raise IntegrityError(exc) from exc


I = TypeVar("I")


class GroupCommit(Generic[I, T]):
    """Writes submitted in the same turn of the event loop share one transaction.

    Each item runs ``write_one(connection, item)`` inside its own savepoint, so an item that
    fails (a constraint: tortoise's ``IntegrityError``; anything else as raised) is rolled
    back alone and its error goes to its caller, while the others commit. One BEGIN/COMMIT,
    one set of lock calls and one WAL append then serve every concurrent writer instead of
    one each. Callers get their result once the commit is done; an error of the transaction
    as a whole goes to every caller.
    """

    def __init__(self, write_one: Callable[[sqlite3.Connection, I], T]) -> None:
        self._write_one = write_one
        self._pending: list[tuple[I, asyncio.Future[T]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def submit(self, item: I) -> T:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Anything still queued belongs to a loop that stopped before flushing it: its
            # callers are gone, and leaving it would keep this loop from scheduling a flush.
            self._pending, self._loop = [], loop
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((item, future))
        if len(self._pending) == 1:
            # Runs after the tasks already ready in this turn, which may add their writes.
            task = loop.create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        return await future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        items = [item for item, _ in batch]
        try:
            outcomes = await transaction(lambda db: self._run(db, items))
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), (ok, value) in zip(batch, outcomes):
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(IntegrityError(value) if isinstance(value, sqlite3.IntegrityError) else value)

    def _run(self, db: sqlite3.Connection, items: list[I]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            if len(items) == 1:  # alone in its transaction: no savepoint needed to keep it apart
                try:
                    outcomes.append((True, self._write_one(db, items[0])))
                except sqlite3.OperationalError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the item's own failure, for its caller
                    db.execute("ROLLBACK")
                    return [(False, exc)]
                items = []
            for item in items:
                db.execute("SAVEPOINT item")
                try:
                    outcomes.append((True, self._write_one(db, item)))
                except sqlite3.OperationalError:
                    raise  # the database, not the item: the whole batch fails (or is retried)
                except Exception as exc:  # noqa: BLE001 - this item's own failure, for its caller
                    db.execute("ROLLBACK TO item")
                    outcomes.append((False, exc))
                db.execute("RELEASE item")
            db.execute("COMMIT")
        except BaseException:
            # A failed COMMIT (locked by a reader in rollback-journal mode, disk full) leaves the
            # transaction open and the write lock held: end it, or every later write fails.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes
