"""Finding the caller's objects (another organization's object is a 404), and reading and
writing entry rows with the store's own SQL."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from tortoise import connections
from tortoise.exceptions import IntegrityError

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import NotFound
from . import sql
from .models import Database, Field, Table

__all__ = [
    "EntryRecord",
    "entry_batches",
    "org_tz",
    "get_database",
    "get_table",
    "get_field",
    "fetch_entries",
    "fetch_entry",
    "insert_rows",
    "update_rows",
    "ts_param",
    "ENTRY_COLUMNS",
    "well_formed",
    "records",
    "as_datetime",
    "dumps",
    "loads",
]

# Our ids are short base62 tokens behind a prefix. Anything else cannot exist, and some of it
# (a NUL from a URL's %00) would be an error in PostgreSQL rather than a miss.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def well_formed(object_id: Any) -> bool:
    return isinstance(object_id, str) and _ID.match(object_id) is not None


ENTRY_COLUMNS = "id, display_id, table_id, data, created_at, updated_at, created_by, last_edited_by"


@dataclass
class EntryRecord:
    pk: int
    id: str
    table_id: str
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    last_edited_by: str | None


def org_tz(principal: Principal) -> ZoneInfo:
    try:
        return ZoneInfo(principal.organization.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def get_database(principal: Principal, database_id: str, *, write: bool = False) -> Database:
    require_scope(principal, "data.databases:write" if write else "data.databases:read")
    if not well_formed(database_id):
        raise NotFound("Database not found.")
    db = await Database.get_or_none(id=database_id, organization_id=principal.org_id, deleted_at=None)
    if db is None:
        raise NotFound("Database not found.")
    return db


async def get_table(principal: Principal, table_id: str, *, write: bool = False) -> Table:
    require_scope(principal, "data.tables:write" if write else "data.tables:read")
    if not well_formed(table_id):
        raise NotFound("Table not found.")
    table = await Table.get_or_none(id=table_id, organization_id=principal.org_id, deleted_at=None)
    if table is None:
        raise NotFound("Table not found.")
    return table


async def get_field(principal: Principal, field_id: str, *, write: bool = False) -> tuple[Table, Field]:
    require_scope(principal, "data.tables:write" if write else "data.tables:read")
    if not well_formed(field_id):
        raise NotFound("Field not found.")
    f = await Field.get_or_none(id=field_id, deleted_at=None).select_related("table")
    if f is None or f.table.organization_id != principal.org_id or f.table.deleted_at is not None:  # type: ignore[attr-defined]
        raise NotFound("Field not found.")
    return f.table, f


# ---------------------------------------------------------------- entry rows


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


as_datetime = _dt


def ts_param(value: datetime) -> Any:
    """A timestamp as the backend stores it (tortoise's own format on SQLite)."""
    if sql.backend() == "postgres":
        return value
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")


def record(row: dict[str, Any]) -> EntryRecord:
    data = row["data"]
    if isinstance(data, (str, bytes)):
        data = loads(data)
    return EntryRecord(
        pk=int(row["id"]),
        id=row["display_id"],
        table_id=row["table_id"],
        data=data or {},
        created_at=_dt(row["created_at"]),
        updated_at=_dt(row["updated_at"]),
        created_by=row.get("created_by"),
        last_edited_by=row.get("last_edited_by"),
    )


async def entry_batches(
    table_id: str,
    *,
    where: Callable[[sql.Dialect], str] | None = None,
    batch: int = 2000,
    time_limit: float = 60,
) -> AsyncIterator[list[EntryRecord]]:
    """A table's live entries (optionally narrowed by ``where``) in id order, a batch at a time.

    Keyset on id, so a walk over every entry has no cap and never holds more than one batch.
    """
    last = 0
    while True:
        d = sql.dialect()
        extra = f" AND {where(d)}" if where is not None else ""
        rows = await sql.read(
            f"SELECT {ENTRY_COLUMNS} FROM store_entries WHERE table_id = {d.p(table_id)} "
            f"AND deleted_at IS NULL AND id > {d.p(last)}{extra} ORDER BY id LIMIT {int(batch)}",
            d.params,
            time_limit=time_limit,
        )
        if not rows:
            return
        recs = [record(r) for r in rows]
        last = recs[-1].pk
        yield recs


def records(rows: Iterable[Sequence[Any]]) -> list[EntryRecord]:
    """``record`` for many driver rows whose first columns are ``ENTRY_COLUMNS``, in order
    (read by position). Entries written together share their timestamps, so each distinct
    one is parsed once."""
    stamps: dict[Any, datetime] = {}
    out = []
    for pk, display_id, table_id, data, created, updated, created_by, last_edited_by, *_ in rows:
        if isinstance(data, (str, bytes)):
            data = loads(data)
        c = stamps.get(created)
        if c is None:
            c = stamps[created] = _dt(created)
        u = stamps.get(updated)
        if u is None:
            u = stamps[updated] = _dt(updated)
        out.append(EntryRecord(int(pk), display_id, table_id, data or {}, c, u, created_by, last_edited_by))
    return out


async def fetch_entries(org_id: str, display_ids: Sequence[str], *, table_id: str | None = None) -> list[EntryRecord]:
    """Live entries of the organization by display id (chunked; order not preserved)."""
    out: list[EntryRecord] = []
    ids = list(dict.fromkeys(display_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        d = sql.dialect()
        where = f"display_id IN ({d.p_list(chunk)}) AND organization_id = {d.p(org_id)} AND deleted_at IS NULL"
        if table_id is not None:
            where += f" AND table_id = {d.p(table_id)}"
        rows = await sql.read(f"SELECT {ENTRY_COLUMNS} FROM store_entries WHERE {where} LIMIT {len(chunk)}", d.params)
        out.extend(record(r) for r in rows)
    return out


async def fetch_entry(principal: Principal, entry_id: str, *, write: bool = False) -> EntryRecord:
    require_scope(principal, "data.tables:write" if write else "data.tables:read")
    if not well_formed(entry_id):
        raise NotFound("Entry not found.")
    rows = await fetch_entries(principal.org_id, [entry_id])
    if not rows:
        raise NotFound("Entry not found.")
    return rows[0]


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# Beyond this magnitude a float may be an integer orjson could not hold (it reads integers
# past 64 bits as floats); such rows are decoded again by the standard library.
_EXACT = 9.2e18


def dumps(data: dict[str, Any]) -> str:
    """Compact JSON of an entry's data. orjson is several times faster than the standard
    library, which remains the fallback for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return _encoder.encode(data)


def loads(text: str | bytes) -> Any:
    """An entry's data from its JSON text (orjson, with the standard library's exact integers)."""
    data = orjson.loads(text)
    if data.__class__ is dict:
        for value in data.values():
            if value.__class__ is float:
                if not -_EXACT < value < _EXACT:
                    return json.loads(text)
            elif value.__class__ is list:
                for item in value:
                    if item.__class__ is float and not -_EXACT < item < _EXACT:
                        return json.loads(text)
    return data


_SQLITE_INSERT = (
    "INSERT INTO store_entries (display_id, organization_id, table_id, data, search, created_by, "
    "last_edited_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# The full-text index of the rows just inserted, in one statement. Inserting through a per-row
# trigger costs an FTS5 segment flush per row (SQLite syncs a virtual table at every statement's
# end); one INSERT ... SELECT per batch buffers the whole batch and writes it once.
_SQLITE_FTS_FILL = (
    "INSERT INTO store_entries_fts(rowid, search) "
    "SELECT id, search FROM store_entries WHERE id > ? AND search IS NOT NULL"
)


def _sqlite_insert_batch(db: sqlite3.Connection, params: list[tuple[Any, ...]]) -> None:
    """Runs on the connection's own thread, so no other statement interleaves: the rows this
    batch inserts are exactly those with ids above the largest id before it."""
    own_transaction = not db.in_transaction
    if own_transaction:
        db.execute("BEGIN")
    try:
        (before,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM store_entries").fetchone()
        db.executemany(_SQLITE_INSERT, params)
        db.execute(_SQLITE_FTS_FILL, (before,))
    except BaseException:
        if own_transaction:
            db.rollback()
        raise
    if own_transaction:
        db.commit()


async def insert_rows(rows: Iterable[Sequence[Any]]) -> None:
    """rows: (display_id, organization_id, table_id, data dict, search, created_by, now).

    One executemany per call plus, on SQLite, one statement filling the full-text index."""
    d = sql.dialect()
    stamps: dict[datetime, Any] = {}

    def stamp(value: datetime) -> Any:
        if value not in stamps:
            stamps[value] = ts_param(value)
        return stamps[value]

    encode = dumps
    if d.name == "postgres":
        stmt = (
            "INSERT INTO store_entries (display_id, organization_id, table_id, data, search, created_by, "
            "last_edited_by, created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $6, $7, $7)"
        )
        params = [[r[0], r[1], r[2], encode(r[3]), r[4], r[5], stamp(r[6])] for r in rows]
        await sql.write_many(stmt, params)
        return
    batch = []
    for r in rows:
        ts = stamp(r[6])
        batch.append((r[0], r[1], r[2], encode(r[3]), r[4], r[5], r[5], ts, ts))
    if not batch:
        return
    client = connections.get("default")
    async with client.acquire_connection() as conn:
        try:
            await conn._execute(_sqlite_insert_batch, conn._conn, batch)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(exc) from exc


async def update_rows(rows: Iterable[tuple[int, dict[str, Any], str | None, str | None, datetime]]) -> None:
    """rows: (pk, data, search, last_edited_by, now)."""
    d = sql.dialect()
    if d.name == "postgres":
        stmt = "UPDATE store_entries SET data = $1::jsonb, search = $2, last_edited_by = $3, updated_at = $4 WHERE id = $5"
    else:
        stmt = "UPDATE store_entries SET data = ?, search = ?, last_edited_by = ?, updated_at = ? WHERE id = ?"
    await sql.write_many(stmt, [[dumps(data), search, who, ts_param(now), pk] for pk, data, search, who, now in rows])
