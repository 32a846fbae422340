"""The store's SQL layer: one dialect object per backend, bounded reads, on-demand indexes.

Every statement the store issues goes through here. Identifiers that end up inside SQL text
(field ids in JSON paths and index names) are checked against ``FIELD_ID_RE`` first; every
value is a bound parameter. Reads carry a time limit (a SQLite progress handler, an asyncpg
statement timeout) and callers always put a ``LIMIT`` on them, as datasette does.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import datetime
from typing import Any, Sequence

from tortoise import connections

from ..kernel.errors import BadRequest, InternalError

__all__ = [
    "FIELD_ID_RE",
    "Dialect",
    "dialect",
    "read",
    "read_many",
    "write",
    "write_many",
    "ensure_field_index",
    "READ_TIME_LIMIT",
]

FIELD_ID_RE = re.compile(r"^fd_[A-Za-z0-9]{1,40}$")
READ_TIME_LIMIT = 5.0  # seconds; a read that takes longer is interrupted
_SQLITE_HANDLER_OPS = 2000  # VM steps between deadline checks

ENTRIES = "store_entries"


def check_field_id(field_id: str) -> str:
    if not FIELD_ID_RE.match(field_id):
        raise InternalError(f"refusing identifier {field_id!r}")
    return field_id


class Dialect:
    """How the store spells a thing on one backend."""

    name = "sqlite"

    def __init__(self) -> None:
        self.params: list[Any] = []

    # -- parameters
    def p(self, value: Any) -> str:
        # Numbered: an expression may appear twice (SELECT and ORDER BY) with one binding.
        self.params.append(value)
        return f"?{len(self.params)}"

    def pj(self, value: Any) -> str:
        """A value compared with a field's JSON value (``jv``)."""
        if isinstance(value, bool):
            value = 1 if value else 0
        return self.p(value)

    def p_list(self, values: Sequence[Any]) -> str:
        return ", ".join(self.p(v) for v in values)

    # -- field expressions
    def jv(self, field_id: str) -> str:
        """The field's value, comparable and indexable (numbers numerically, strings bytewise)."""
        return f"json_extract(data, '$.{check_field_id(field_id)}')"

    def jt(self, field_id: str) -> str:
        """The field's value as text (strings unquoted, arrays as JSON text)."""
        return self.jv(field_id)

    def is_number(self, field_id: str) -> str:
        return f"json_type(data, '$.{check_field_id(field_id)}') IN ('integer', 'real')"

    def jnum(self, field_id: str) -> str:
        return self.jv(field_id)

    def like(self, expr: str, pattern: str, negate: bool = False) -> str:
        op = "NOT LIKE" if negate else "LIKE"
        return f"{expr} {op} {self.p(pattern)} ESCAPE '\\'"

    def array_any(self, field_id: str, values: Sequence[Any]) -> str:
        return (
            f"EXISTS (SELECT 1 FROM json_each(data, '$.{check_field_id(field_id)}') "
            f"WHERE value IN ({self.p_list(values)}))"
        )

    def array_all(self, field_id: str, values: Sequence[Any]) -> str:
        distinct = list(dict.fromkeys(values))
        return (
            f"(SELECT COUNT(DISTINCT value) FROM json_each(data, '$.{check_field_id(field_id)}') "
            f"WHERE value IN ({self.p_list(distinct)})) = {len(distinct)}"
        )

    def search(self, query: str) -> str:
        tokens = search_tokens(query)
        if not tokens:
            return "1 = 1"
        match = " AND ".join('"' + t.replace('"', '""') + '"*' for t in tokens)
        return f"id IN (SELECT rowid FROM store_entries_fts WHERE store_entries_fts MATCH {self.p(match)})"

    def asc(self, expr: str) -> str:
        return f"{expr} ASC"

    def desc(self, expr: str) -> str:
        return f"{expr} DESC"

    def ts(self, value: Any) -> str:
        return self.p(value)

    def index_sql(self, field_id: str) -> tuple[str, str]:
        """The field's expression index, in the order ``asc`` sorts (PostgreSQL: nulls first)."""
        name = f"sx_{field_id.lower()}"
        return name, (
            f'CREATE INDEX IF NOT EXISTS "{name}" ON {ENTRIES} '
            f"(table_id, {self.asc(self.jv(field_id))}, id) WHERE deleted_at IS NULL"
        )

    def pair_index_sql(self, group_id: str, value_id: str) -> tuple[str, str]:
        """A covering index for aggregating one field grouped by another."""
        name = f"sg_{group_id.lower()}_{value_id.lower()}"
        return name, (
            f'CREATE INDEX IF NOT EXISTS "{name}" ON {ENTRIES} '
            f"(table_id, {self.jv(group_id)}, {self.jv(value_id)}) WHERE deleted_at IS NULL"
        )

    def indexed_by(self, name: str) -> str:
        """SQLite's planner does not always see that an expression index covers an aggregate."""
        return f' INDEXED BY "{name}"'


class PostgresDialect(Dialect):
    name = "postgres"

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def pj(self, value: Any) -> str:
        return f"{self.p(json.dumps(value))}::jsonb"

    def jv(self, field_id: str) -> str:
        return f"(data->'{check_field_id(field_id)}')"

    def jt(self, field_id: str) -> str:
        return f"(data->>'{check_field_id(field_id)}')"

    def is_number(self, field_id: str) -> str:
        return f"jsonb_typeof(data->'{check_field_id(field_id)}') = 'number'"

    def jnum(self, field_id: str) -> str:
        fid = check_field_id(field_id)
        return f"(CASE WHEN jsonb_typeof(data->'{fid}') = 'number' THEN (data->>'{fid}')::numeric END)"

    def like(self, expr: str, pattern: str, negate: bool = False) -> str:
        op = "NOT ILIKE" if negate else "ILIKE"
        return f"{expr} {op} {self.p(pattern)} ESCAPE '\\'"

    def array_any(self, field_id: str, values: Sequence[Any]) -> str:
        return f"({self.jv(field_id)} ?| {self.p([str(v) for v in values])}::text[])"

    def array_all(self, field_id: str, values: Sequence[Any]) -> str:
        return f"({self.jv(field_id)} ?& {self.p([str(v) for v in values])}::text[])"

    def search(self, query: str) -> str:
        tokens = search_tokens(query)
        if not tokens:
            return "1 = 1"
        ts = " & ".join("'" + t.replace("'", "''").replace("\\", "") + "':*" for t in tokens)
        return f"to_tsvector('simple', coalesce(search, '')) @@ to_tsquery('simple', {self.p(ts)})"

    # NULL sorts as the smallest value on both backends (SQLite's native order).
    def asc(self, expr: str) -> str:
        return f"{expr} ASC NULLS FIRST"

    def desc(self, expr: str) -> str:
        return f"{expr} DESC NULLS LAST"

    def ts(self, value: Any) -> str:
        # asyncpg binds a timestamptz parameter from a datetime only, never from text
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return f"{self.p(value)}::timestamptz"

    def indexed_by(self, name: str) -> str:
        return ""


_TOKEN_RE = re.compile(r"\w+", re.UNICODE)


def search_tokens(query: str) -> list[str]:
    return _TOKEN_RE.findall(query.lower())[:16]


def backend() -> str:
    client = connections.get("default")
    return "postgres" if client.capabilities.dialect == "postgres" else "sqlite"


def dialect() -> Dialect:
    """A fresh statement builder for the current connection's backend."""
    return PostgresDialect() if backend() == "postgres" else Dialect()


# ---------------------------------------------------------------- execution

async def _deadline(conn: Any) -> list[float]:
    """The connection's read deadline, checked by a progress handler installed once."""
    state: list[float] | None = getattr(conn, "_switchboard_deadline", None)
    if state is None:
        state = [0.0]
        conn._switchboard_deadline = state

        def handler(state: list[float] = state) -> int:
            return 1 if state[0] and time.monotonic() > state[0] else 0

        await conn._execute(conn._conn.set_progress_handler, handler, _SQLITE_HANDLER_OPS)
    return state


def _fetch_all(
    db: sqlite3.Connection, statements: Sequence[tuple[str, Sequence[Any]]], state: list[float], limit: float
) -> list[list[Any]]:
    out = []
    for text, params in statements:
        state[0] = time.monotonic() + limit  # each statement has the whole time limit
        out.append(db.execute(text, list(params)).fetchall())
    return out


async def _sqlite_read(
    client: Any, statements: Sequence[tuple[str, Sequence[Any]]], limit: float, raw: bool = False
) -> list[list[Any]]:
    async with client.acquire_connection() as conn:
        state = await _deadline(conn)
        try:
            # All statements in one call on the connection's thread: one hand-off, not one each.
            results = await conn._execute(_fetch_all, conn._conn, statements, state, limit)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise _too_long(limit) from exc
            raise
        finally:
            state[0] = 0.0
        return results if raw else [[dict(r) for r in rows] for rows in results]


async def _postgres_read(client: Any, sql: str, params: Sequence[Any], limit: float, raw: bool = False) -> list[Any]:
    import asyncpg

    async with client.acquire_connection() as conn:
        try:
            rows = await conn.fetch(sql, *params, timeout=limit)
        except (TimeoutError, asyncpg.exceptions.QueryCanceledError) as exc:
            raise _too_long(limit) from exc
        return rows if raw else [dict(r) for r in rows]


def _too_long(limit: float) -> BadRequest:
    return BadRequest(
        f"The query took longer than {limit:g} seconds and was stopped. Narrow the filters.",
        code="query_timeout",
    )


async def read(sql: str, params: Sequence[Any] = (), *, time_limit: float = READ_TIME_LIMIT) -> list[dict[str, Any]]:
    """Run a bounded read on the current connection (the open transaction, if any)."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        return await _postgres_read(client, sql, params, time_limit)
    return (await _sqlite_read(client, [(sql, params)], time_limit))[0]


async def read_many(
    statements: Sequence[tuple[str, Sequence[Any]]], *, time_limit: float = READ_TIME_LIMIT, raw: bool = False
) -> list[list[Any]]:
    """Several bounded reads in order (each with its own time limit), on SQLite in a single
    hand-off to the connection's thread (each hand-off costs about as much as a small
    indexed query). ``raw``: the driver's rows (indexable by position and column name)
    instead of dicts."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        return [await _postgres_read(client, text, params, time_limit, raw) for text, params in statements]
    return await _sqlite_read(client, statements, time_limit, raw)


async def write(sql: str, params: Sequence[Any] = ()) -> int:
    """Run one write; returns the affected row count."""
    client = connections.get("default")
    count, _ = await client.execute_query(sql, list(params))
    return int(count)


async def write_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    client = connections.get("default")
    if not rows:
        return
    await client.execute_many(sql, [list(r) for r in rows])


_indexed: set[tuple[str, str]] = set()


async def ensure_field_index(field_id: str) -> None:
    """Create the expression index for a field the first time it is filtered or sorted on."""
    d = dialect()
    cache_key = (d.name, field_id)
    if cache_key in _indexed:
        return
    _, sql = d.index_sql(field_id)
    await connections.get("default").execute_script(sql)
    _indexed.add(cache_key)


def has_field_index(field_id: str) -> bool:
    """Whether this process already made sure the field's expression index exists."""
    return (dialect().name, field_id) in _indexed


async def ensure_pair_index(group_id: str, value_id: str) -> str:
    d = dialect()
    name, text = d.pair_index_sql(group_id, value_id)
    if (d.name, name) not in _indexed:
        await connections.get("default").execute_script(text)
        _indexed.add((d.name, name))
    return name


async def drop_field_index(field_id: str) -> None:
    d = dialect()
    name, _ = d.index_sql(field_id)
    await connections.get("default").execute_script(f'DROP INDEX IF EXISTS "{name}"')
    _indexed.discard((d.name, field_id))
    for key in [k for k in _indexed if k[1].startswith("sg_") and field_id.lower() in k[1]]:
        await connections.get("default").execute_script(f'DROP INDEX IF EXISTS "{key[1]}"')
        _indexed.discard(key)
