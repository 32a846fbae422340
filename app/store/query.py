"""The query language compiled to SQL: filters (nested and/or groups), sorts, full-text
search, offset and keyset pagination, and aggregates. Nothing is filtered in Python.

Operators are allowed per field type (``OPERATORS``); a wrong one is 422 ``invalid_filter``, an
unknown field 422 ``field_not_found`` with suggestions, a bad sort 422 ``invalid_sort``.
NULL (an empty cell) sorts as the smallest value on both backends; the entry's integer key
is the last sort key, so keyset pages never repeat or skip an entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import NotFound, ValidationFailed
from ..kernel.pagination import decode_cursor, encode_cursor
from . import sql
from .access import ENTRY_COLUMNS, EntryRecord, as_datetime, get_table, org_tz, records, ts_param
from .computed import plan_for, recompute_table
from .models import Field, Table
from .schema import TableSchema, cached_schema, field_not_found, load_schema, options_of
from .types import Invalid, normalizer, parse_date_value

__all__ = [
    "OPERATORS",
    "Page",
    "query_entries",
    "aggregate",
    "parse_sort_param",
    "refresh_time_formulas",
    "MAX_OFFSET_LIMIT",
    "MAX_CURSOR_LIMIT",
]

MAX_OFFSET_LIMIT = 200
MAX_CURSOR_LIMIT = 1000
MAX_GROUPS = 1000
MAX_FILTER_NODES = 100

_EMPTY = {"is_empty", "is_not_empty"}
_TEXT = {"is", "is_not", "contains", "not_contains", "starts_with", "is_any_of", "is_none_of"} | _EMPTY
_NUMBER = {"is", "is_not", "gt", "gte", "lt", "lte", "between", "is_any_of", "is_none_of"} | _EMPTY
_DATE = {"is", "is_not", "before", "after", "on_or_before", "on_or_after", "between", "within"} | _EMPTY
_ARRAY = {"has_any_of", "has_all_of", "has_none_of"} | _EMPTY
_COMPUTED = _TEXT | _NUMBER | _DATE

OPERATORS: dict[str, frozenset[str]] = {
    "text": frozenset(_TEXT),
    "url": frozenset(_TEXT),
    "number": frozenset(_NUMBER),
    "select": frozenset({"is", "is_not", "is_any_of", "is_none_of"} | _EMPTY),
    "multi_select": frozenset(_ARRAY),
    "date": frozenset(_DATE),
    "checkbox": frozenset({"is", "is_not"}),
    "file": frozenset(_EMPTY),
    "relation": frozenset(_ARRAY),
    "user": frozenset({"is", "is_not", "is_any_of", "is_none_of"} | _ARRAY),
    "formula": frozenset(_COMPUTED),
    "rollup": frozenset(_COMPUTED),
    "lookup": frozenset(_ARRAY | {"contains", "not_contains"}),
    "system_date": frozenset(_DATE - _EMPTY),
}
ALL_OPERATORS = frozenset().union(*OPERATORS.values())
UNSORTABLE = frozenset({"file", "relation", "multi_select", "lookup"})
INDEXED_OPS = frozenset(
    {"is", "gt", "gte", "lt", "lte", "between", "before", "after", "on_or_before", "on_or_after", "within", "is_any_of"}
)
SYSTEM_SORT = {"created_at": "created_at", "created_date": "created_at", "updated_at": "updated_at", "updated_date": "updated_at"}
WITHIN = ("past_week", "past_month", "past_year", "next_week", "next_month", "next_n_days", "past_n_days")


def _invalid(message: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_filter", details=details or None)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _add_months(d: date, months: int) -> date:
    month = d.month - 1 + months
    year = d.year + month // 12
    month = month % 12 + 1
    import calendar

    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass
class _Target:
    """What a filter or sort refers to: a field, or an entry timestamp."""

    field: Field | None
    column: str | None = None  # created_at / updated_at

    @property
    def type(self) -> str:
        return self.field.type if self.field is not None else "system_date"


class Compiler:
    def __init__(self, schema: TableSchema, tz: ZoneInfo, now: datetime) -> None:
        self.schema = schema
        self.tz = tz
        self.today = now.astimezone(tz).date()
        self.d = sql.dialect()
        self.index_fields: set[str] = set()
        self.nodes = 0

    # ------------------------------------------------------------ references
    def target(self, ref: Any, *, code: str, where: str) -> _Target:
        f = self.schema.find(ref)
        if f is not None:
            return _Target(f)
        if isinstance(ref, str) and ref.lower() in SYSTEM_SORT:
            return _Target(None, SYSTEM_SORT[ref.lower()])
        names = [x.name for x in self.schema.fields]
        if code == "invalid_sort":
            err = field_not_found(str(ref), names)
            raise ValidationFailed(
                f"Cannot sort by '{ref}': no such field in this table.", code="invalid_sort", details=err.details
            )
        raise field_not_found(str(ref), names, where=where)

    # ------------------------------------------------------------ filters
    def filters(self, node: Any, where: str = "filters") -> str:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            raise _invalid(f"At most {MAX_FILTER_NODES} filter conditions.")
        if node is None:
            return "1 = 1"
        if isinstance(node, list):
            parts = [self.filters(n, f"{where}[{i}]") for i, n in enumerate(node)]
            return "(" + " AND ".join(parts) + ")" if parts else "1 = 1"
        if not isinstance(node, dict):
            raise _invalid("Each filter must be an object {field, op, value} or a group {and: [...]}/{or: [...]}.", location=where)
        if "and" in node or "or" in node:
            if "field" in node or len(node) != 1:
                raise _invalid("A group has exactly one key, 'and' or 'or'.", location=where)
            key = "and" if "and" in node else "or"
            items = node[key]
            if not isinstance(items, list) or not items:
                raise _invalid(f"'{key}' must be a non-empty list of filters.", location=where)
            parts = [self.filters(n, f"{where}.{key}[{i}]") for i, n in enumerate(items)]
            return "(" + f" {key.upper()} ".join(parts) + ")"
        return self.condition(node, where)

    def condition(self, node: dict[str, Any], where: str) -> str:
        if "field" not in node or "op" not in node:
            raise _invalid("A filter needs 'field' and 'op'.", location=where)
        t = self.target(node["field"], code="field_not_found", where=where)
        op = node["op"]
        name = t.field.name if t.field is not None else str(node["field"])
        if not isinstance(op, str) or op not in ALL_OPERATORS:
            raise _invalid(
                f"Unknown operator '{op}'.", location=where, field=name, op=op, allowed=sorted(OPERATORS[t.type])
            )
        if op not in OPERATORS[t.type]:
            raise _invalid(
                f"Operator '{op}' is not allowed for {t.type.replace('system_date', 'date')} field '{name}'.",
                location=where,
                field=name,
                op=op,
                allowed=sorted(OPERATORS[t.type]),
            )
        value = node.get("value")
        try:
            return self._compile(t, op, value, node, where)
        except Invalid as exc:
            raise _invalid(f"Invalid value for '{op}' on field '{name}': {exc}", location=where, field=name, op=op) from None

    def _compile(self, t: _Target, op: str, value: Any, node: dict[str, Any], where: str) -> str:
        d = self.d
        if t.field is None:
            return self._dates(t, op, value, node, t.column or "created_at")
        f = t.field
        fid = f.id
        jv = d.jv(fid)
        if op in INDEXED_OPS and f.type not in UNSORTABLE:
            self.index_fields.add(fid)
        if op == "is_empty":
            return f"{jv} IS NULL"
        if op == "is_not_empty":
            return f"{jv} IS NOT NULL"
        ftype = f.type
        if ftype == "checkbox":
            if not isinstance(value, bool):
                raise Invalid("must be true or false")
            expr = f"COALESCE({jv}, {d.pj(False)}) = {d.pj(value)}"
            return expr if op == "is" else f"NOT ({expr})"
        if ftype in ("multi_select", "relation", "lookup", "user") and op in ("has_any_of", "has_all_of", "has_none_of"):
            values = self._list(value)
            if ftype == "multi_select":
                values = [self._option(f, v) for v in values]
            if ftype == "user" and not (f.config or {}).get("multiple"):
                cond = f"{jv} IN ({', '.join(d.pj(v) for v in values)})"
                return cond if op == "has_any_of" else (f"NOT ({cond})" if op == "has_none_of" else cond)
            if op == "has_any_of":
                return d.array_any(fid, values)
            if op == "has_all_of":
                return d.array_all(fid, values)
            return f"({jv} IS NULL OR NOT {d.array_any(fid, values)})"
        if op in ("contains", "not_contains", "starts_with"):
            if not isinstance(value, str) or value == "":
                raise Invalid("must be a non-empty string")
            pattern = _escape_like(value) + "%"
            if op != "starts_with":
                pattern = "%" + pattern
            if op == "not_contains":
                return f"({jv} IS NULL OR {d.like(d.jt(fid), pattern, negate=True)})"
            return d.like(d.jt(fid), pattern)
        if ftype == "date" or op in ("before", "after", "on_or_before", "on_or_after", "within") or (
            ftype in ("formula", "rollup") and isinstance(value, str) and op in ("is", "is_not", "between") and _looks_like_date(value)
        ):
            return self._dates(t, op, value, node, None)
        coerce = self._scalar(f)
        if op in ("is", "is_not"):
            v = coerce(value)
            return f"{jv} = {d.pj(v)}" if op == "is" else f"({jv} IS NULL OR {jv} <> {d.pj(v)})"
        if op in ("is_any_of", "is_none_of"):
            values = [coerce(v) for v in self._list(value)]
            cond = f"{jv} IN ({', '.join(d.pj(v) for v in values)})"
            return cond if op == "is_any_of" else f"({jv} IS NULL OR NOT {cond})"
        if op in ("gt", "gte", "lt", "lte"):
            sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            return f"{jv} {sym} {d.pj(coerce(value))}"
        if op == "between":
            lo, hi = self._pair(value)
            return f"({jv} >= {d.pj(coerce(lo))} AND {jv} <= {d.pj(coerce(hi))})"
        raise Invalid(f"operator {op} is not supported here")  # pragma: no cover

    def _scalar(self, f: Field) -> Any:
        if f.type in ("select",):
            return lambda v: self._option(f, v)
        if f.type == "number":
            n = normalizer(f, self.tz)

            def number(v: Any) -> Any:
                out = n(v)
                if out is None:
                    raise Invalid("must be a number")
                return out

            return number
        if f.type in ("text", "url", "user"):

            def text(v: Any) -> Any:
                if not isinstance(v, str):
                    raise Invalid("must be a string")
                return v

            return text

        def any_scalar(v: Any) -> Any:  # formula / rollup: compare like with like
            if isinstance(v, (bool, float, str)) or _int64(v):
                return v
            raise Invalid("must be a string, number (64-bit at most) or boolean")

        return any_scalar

    def _option(self, f: Field, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be an option label or op_ id")
        for o in options_of(f):
            if value == o["id"] or value.strip().lower() == str(o["label"]).lower():
                return str(o["id"])
        raise Invalid(f"'{value}' is not an option of this field")

    @staticmethod
    def _list(value: Any) -> list[Any]:
        if isinstance(value, (str, float)) or _int64(value):
            return [value]
        if not isinstance(value, list) or not value:
            raise Invalid("must be a non-empty list")
        if len(value) > 500:
            raise Invalid("at most 500 values")
        if not all(v is None or isinstance(v, (str, float, bool)) or _int64(v) for v in value):
            raise Invalid("values must be strings, numbers (64-bit at most) or booleans")
        return value

    @staticmethod
    def _pair(value: Any) -> tuple[Any, Any]:
        if not isinstance(value, list) or len(value) != 2:
            raise Invalid("must be a list of two values [from, to]")
        return value[0], value[1]

    # ------------------------------------------------------------ dates
    def _day(self, value: Any) -> date:
        parsed = parse_date_value(value)
        if isinstance(parsed, datetime):
            return parsed.astimezone(self.tz).date()
        return parsed

    def _bound(self, f: Field | None, day: date, column: str | None) -> str:
        """The first instant of ``day`` (organization time) in the target's stored form."""
        d = self.d
        include_time = f is None or (f.type == "date" and (f.config or {}).get("include_time"))
        if not include_time:
            return d.pj(day.isoformat())
        instant = datetime.combine(day, time(0), tzinfo=self.tz).astimezone(timezone.utc)
        if column is not None:
            return d.ts(ts_param(instant) if d.name == "sqlite" else instant.isoformat())
        return d.pj(instant.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def _range(self, t: _Target, start: date | None, end: date | None, column: str | None) -> str:
        """start <= value < end (either side open)."""
        expr = column if column else self.d.jv(t.field.id)  # type: ignore[union-attr]
        parts = []
        if start is not None:
            parts.append(f"{expr} >= {self._bound(t.field, start, column)}")
        if end is not None:
            parts.append(f"{expr} < {self._bound(t.field, end, column)}")
        return "(" + " AND ".join(parts) + ")"

    def _within(self, value: Any, node: dict[str, Any]) -> tuple[date, date]:
        n = node.get("days", node.get("n"))
        period = value
        if isinstance(value, dict):
            period = value.get("period")
            n = value.get("days", value.get("n", n))
        if period not in WITHIN:
            raise Invalid(f"must be one of {', '.join(WITHIN)}")
        today = self.today
        one = timedelta(days=1)
        if period in ("next_n_days", "past_n_days"):
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 36500:
                raise Invalid(f"{period} needs a number of days (value {{\"period\": \"{period}\", \"days\": 7}})")
            return (today - timedelta(days=n), today + one) if period == "past_n_days" else (today, today + timedelta(days=n) + one)
        if period == "past_week":
            return today - timedelta(days=7), today + one
        if period == "past_month":
            return _add_months(today, -1), today + one
        if period == "past_year":
            return _add_months(today, -12), today + one
        if period == "next_week":
            return today, today + timedelta(days=8)
        return today, _add_months(today, 1) + one  # next_month

    def _dates(self, t: _Target, op: str, value: Any, node: dict[str, Any], column: str | None) -> str:
        one = timedelta(days=1)
        if op == "within":
            start, end = self._within(value, node)
            return self._range(t, start, end, column)
        if op == "between":
            lo, hi = self._pair(value)
            return self._range(t, self._day(lo), self._day(hi) + one, column)
        day = self._day(value)
        if op == "is":
            return self._range(t, day, day + one, column)
        if op == "is_not":
            expr = column or self.d.jv(t.field.id)  # type: ignore[union-attr]
            return f"({expr} IS NULL OR NOT {self._range(t, day, day + one, column)})"
        if op == "before":
            return self._range(t, None, day, column)
        if op == "on_or_before":
            return self._range(t, None, day + one, column)
        if op == "after":
            return self._range(t, day + one, None, column)
        if op == "on_or_after":
            return self._range(t, day, None, column)
        raise Invalid(f"operator {op} does not apply to dates")

    # ------------------------------------------------------------ sorts
    def sort_keys(self, sort: Any) -> list[tuple[str, bool, str]]:
        """[(SQL expression, descending, label)]."""
        if sort is None:
            return []
        if isinstance(sort, dict):
            sort = [sort]
        if not isinstance(sort, list):
            raise ValidationFailed("'sort' must be a list of {field, direction}.", code="invalid_sort")
        keys = []
        for i, item in enumerate(sort[:5]):
            if not isinstance(item, dict) or "field" not in item:
                raise ValidationFailed(f"sort[{i}] must be an object {{field, direction}}.", code="invalid_sort")
            direction = str(item.get("direction", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise ValidationFailed(
                    f"sort[{i}].direction must be 'asc' or 'desc'.", code="invalid_sort", details={"direction": direction}
                )
            t = self.target(item["field"], code="invalid_sort", where=f"sort[{i}]")
            if t.field is None:
                keys.append((t.column or "created_at", direction == "desc", t.column or ""))
                continue
            if t.field.type in UNSORTABLE:
                raise ValidationFailed(
                    f"Field '{t.field.name}' ({t.field.type}) cannot be sorted.",
                    code="invalid_sort",
                    details={"field": t.field.name, "type": t.field.type},
                )
            if t.field.type == "select":
                options = options_of(t.field)
                if options:
                    cases = " ".join(f"WHEN {self.d.pj(o['id'])} THEN {i}" for i, o in enumerate(options))
                    keys.append((f"(CASE {self.d.jv(t.field.id)} {cases} END)", direction == "desc", t.field.id))
                else:
                    keys.append(("NULL", direction == "desc", t.field.id))
                continue
            self.index_fields.add(t.field.id)
            keys.append((self.d.jv(t.field.id), direction == "desc", t.field.id))
        return keys


_INT64 = (-(2**63), 2**63 - 1)


def _int64(v: Any) -> bool:
    """An integer both backends can bind (a wider one is a driver error, not a 422)."""
    return isinstance(v, int) and not isinstance(v, bool) and _INT64[0] <= v <= _INT64[1]


def _looks_like_date(value: str) -> bool:
    return len(value) >= 10 and value[4] == "-" and value[7] == "-" and value[:4].isdigit()


def parse_sort_param(raw: str | None) -> list[dict[str, str]] | None:
    """``Status:asc,Name:desc`` -> [{field, direction}] (the GET list's ``sort``)."""
    if not raw:
        return None
    out = []
    for part in raw.split(","):
        if not part.strip():
            continue
        name, sep, direction = part.strip().rpartition(":")
        if not sep:
            name, direction = part.strip(), "asc"
        out.append({"field": name, "direction": direction})
    return out


@dataclass
class Page:
    schema: TableSchema
    entries: list[EntryRecord]
    limit: int
    offset: int | None
    total: int | None
    next_cursor: str | None
    has_more: bool


async def refresh_time_formulas(principal: Principal, table: Table, schema: TableSchema) -> bool:
    """TODAY()/NOW() formulas are re-materialized once the organization's local day changes."""
    if not any(f.type == "formula" for f in schema.fields):
        return False
    plan = await plan_for(schema)
    if not plan.uses_now:
        return False
    tz = org_tz(principal)
    today = datetime.now(timezone.utc).astimezone(tz).date().isoformat()
    if table.computed_day == today:
        return False
    from ..kernel.transactions import atomic

    async with atomic():
        await recompute_table(schema, principal.org_id, tz)
        table.computed_day = today
        await table.save(update_fields=["computed_day"])
    return True


def _zone(name: Any) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        if isinstance(name, str) and name.strip():
            return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        pass
    raise ValidationFailed(details={"timezone": ["must be an IANA time zone such as Europe/Paris"]})


def _signature(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class _QueryPlan:
    """One compiled entries query."""

    text: str
    params: list[Any]
    count_text: str | None
    count_params: list[Any]
    keys: list[tuple[str, bool, str]]
    signature: str
    index_fields: list[str]
    limit: int
    offset: int
    use_cursor: bool


def _compile_query(
    principal: Principal,
    schema: TableSchema,
    *,
    filters: Any,
    sort: Any,
    search: Any,
    limit: int | None,
    offset: int | None,
    cursor: str | None,
    use_cursor: bool,
    include_total: bool | None,
    timezone_name: str | None = None,
) -> _QueryPlan:
    """Check the query's arguments against the schema and compile it (no I/O)."""
    use_cursor = use_cursor or cursor is not None
    max_limit = MAX_CURSOR_LIMIT if use_cursor else MAX_OFFSET_LIMIT
    if limit is None:
        limit = 50
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= max_limit:
        raise ValidationFailed(details={"limit": [f"must be an integer between 1 and {max_limit}"]})
    if offset is None:
        offset = 0
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= 2**63 - 1:
        raise ValidationFailed(details={"offset": ["must be a non-negative integer"]})
    if use_cursor and offset:
        raise ValidationFailed(details={"offset": ["cannot be combined with cursor pagination"]})
    if search is not None and not isinstance(search, str):
        raise ValidationFailed(details={"search": ["must be a string"]})

    c = Compiler(schema, _zone(timezone_name) or org_tz(principal), datetime.now(timezone.utc))
    d = c.d
    where = [f"table_id = {d.p(schema.table_id)}", "deleted_at IS NULL"]
    if filters not in (None, [], {}):
        where.append(c.filters(filters))
    if search and search.strip():
        where.append(d.search(search))
    count_where = list(where)
    count_params = list(d.params)
    keys = c.sort_keys(sort)
    id_desc = keys[0][1] if keys else False
    all_keys = keys + [("id", id_desc, "id")]
    signature = _signature([schema.table_id, sort, filters, search] + ([timezone_name] if timezone_name else []))

    if use_cursor and cursor:
        pos = decode_cursor(cursor)
        values = pos.get("k")
        if pos.get("s") != signature or not isinstance(values, list) or len(values) != len(all_keys):
            raise ValidationFailed(details={"cursor": ["does not belong to this query (filters, sort or search changed)"]})
        if not all(_cursor_value_ok(d, key, v) for key, v in zip(all_keys, values)):
            raise ValidationFailed(details={"cursor": ["is not a valid cursor"]})
        where.append(_keyset(d, all_keys, values, keys))

    order = ", ".join(d.desc(expr) if desc else d.asc(expr) for expr, desc, _ in all_keys)
    select_keys = "".join(f", {expr} AS k{i}" for i, (expr, _, _) in enumerate(keys))
    text = f"SELECT {ENTRY_COLUMNS}{select_keys} FROM store_entries WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit + 1}"
    if not use_cursor and offset:
        text += f" OFFSET {int(offset)}"
    count_text = None
    if include_total if include_total is not None else not use_cursor:
        count_text = f"SELECT COUNT(*) AS n FROM store_entries WHERE {' AND '.join(count_where)}"
    return _QueryPlan(
        text, d.params, count_text, count_params, keys, signature, sorted(c.index_fields), limit, offset, use_cursor
    )


def _page(schema: TableSchema, q: _QueryPlan, rows: list[Any], count_rows: list[Any] | None) -> Page:
    has_more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_cursor = None
    if q.use_cursor and has_more and rows:
        last = rows[-1]
        values = [_key_value(last[f"k{i}"]) for i in range(len(q.keys))] + [int(last["id"])]
        next_cursor = encode_cursor({"k": values, "s": q.signature})
    total = int(count_rows[0]["n"]) if count_rows is not None else None
    return Page(schema, records(rows), q.limit, None if q.use_cursor else q.offset, total, next_cursor, has_more)


_TABLE_VERSION = (
    "SELECT updated_at FROM store_tables WHERE id = ?1 AND organization_id = ?2 AND deleted_at IS NULL LIMIT 1"
)


async def _query_cached(principal: Principal, table_id: str, args: dict[str, Any]) -> Page | None:
    """The query compiled against the schema this process last loaded for the table, sent
    in the same hand-off as the lookup of the table's row (SQLite). The answer is used only
    if that row says the schema is current and the caller may see the table; otherwise
    (None) the query is answered the ordinary way."""
    if not isinstance(table_id, str) or sql.backend() != "sqlite":
        return None
    hit = cached_schema(table_id)
    if hit is None:
        return None
    version, schema = hit
    if getattr(schema.table, "organization_id", None) != principal.org_id:
        return None
    if any(f.type == "formula" for f in schema.fields) and (await plan_for(schema)).uses_now:
        return None  # TODAY()/NOW() may need re-materializing first
    try:
        q = _compile_query(principal, schema, **args)
    except ValidationFailed:
        return None  # perhaps against a stale schema: let the fresh one decide
    if not all(sql.has_field_index(fid) for fid in q.index_fields):
        return None
    statements: list[tuple[str, Any]] = [(_TABLE_VERSION, [table_id, principal.org_id]), (q.text, q.params)]
    if q.count_text is not None:
        statements.append((q.count_text, q.count_params))
    found, rows, *counted = await sql.read_many(statements, raw=True)
    if not found:
        raise NotFound("Table not found.")
    if as_datetime(found[0]["updated_at"]) != version:
        return None
    return _page(schema, q, rows, counted[0] if counted else None)


async def query_entries(
    principal: Principal,
    table_id: str,
    *,
    filters: Any = None,
    sort: Any = None,
    search: Any = None,
    limit: int | None = None,
    offset: int | None = None,
    cursor: str | None = None,
    use_cursor: bool = False,
    include_total: bool | None = None,
    timezone_name: str | None = None,
) -> Page:
    """``timezone_name``: the IANA zone relative dates (today, this week ...) are read in,
    instead of the organization's."""
    args = dict(
        filters=filters, sort=sort, search=search, limit=limit, offset=offset, cursor=cursor,
        use_cursor=use_cursor, include_total=include_total, timezone_name=timezone_name,
    )
    require_scope(principal, "data.tables:read")
    page = await _query_cached(principal, table_id, args)
    if page is not None:
        return page
    table = await get_table(principal, table_id)
    schema = await load_schema(table)
    await refresh_time_formulas(principal, table, schema)
    q = _compile_query(principal, schema, **args)
    for fid in q.index_fields:
        await sql.ensure_field_index(fid)
    (rows,) = await sql.read_many([(q.text, q.params)], raw=True)
    count_rows = await sql.read(q.count_text, q.count_params) if q.count_text is not None else None
    return _page(schema, q, rows, count_rows)


def _key_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value




def _cursor_value_ok(d: sql.Dialect, key: tuple[str, bool, str], value: Any) -> bool:
    """A cursor is client-held: each value must be what this key's SQL can bind (a tampered
    one is a 422, not a driver error)."""

    expr, _, label = key
    if label == "id":
        return _int64(value) and value >= 0
    if value is None:
        return True
    if expr in ("created_at", "updated_at"):
        try:
            datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        return True
    if expr.startswith("(CASE"):  # a select's option position
        return _int64(value)
    if expr == "NULL":
        return False
    if d.name == "postgres":  # jsonb values travel as their JSON text
        if not isinstance(value, str):
            return False
        try:
            decoded = json.loads(value)
        except ValueError:
            return False
        return decoded is None or isinstance(decoded, (str, int, float, bool))
    return isinstance(value, (str, float, bool)) or _int64(value)


def _keyset(d: sql.Dialect, keys: list[tuple[str, bool, str]], values: list[Any], user_keys: list[Any]) -> str:
    """Rows strictly after ``values`` in the (keys..., id) order, NULL being the smallest."""

    def param(i: int, v: Any) -> str:
        expr = keys[i][0]
        if expr in ("created_at", "updated_at"):
            return d.ts(v)
        if d.name == "postgres" and expr.startswith("(data->"):
            return f"{d.p(v)}::jsonb"  # jsonb key values travel as their JSON text
        return d.p(v)

    # Single key without NULL: a range the index can seek to, then the id tiebreak.
    if len(keys) == 2 and values[0] is not None:
        expr, desc, _ = keys[0]
        v, last = param(0, values[0]), param(1, values[1])
        if desc:
            return f"(({expr} <= {v} AND ({expr} < {v} OR id < {last})) OR {expr} IS NULL)"
        return f"({expr} >= {v} AND ({expr} > {v} OR id > {last}))"
    ors = []
    for i in range(len(keys)):
        parts = []
        for j in range(i):
            expr = keys[j][0]
            parts.append(f"{expr} IS NULL" if values[j] is None else f"{expr} = {param(j, values[j])}")
        expr, desc, _ = keys[i]
        v = values[i]
        if v is None:
            if desc:
                continue  # nothing sorts after NULL in descending order
            parts.append(f"{expr} IS NOT NULL")
        else:
            parts.append(f"({expr} < {param(i, v)} OR {expr} IS NULL)" if desc else f"{expr} > {param(i, v)}")
        ors.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(ors) + ")" if ors else "1 = 0"


# ---------------------------------------------------------------- aggregates

AGGREGATES = ("count", "distinct_count", "sum", "avg", "min", "max")
_NUMERIC_TYPES = ("number", "formula", "rollup")


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


@dataclass
class Aggregation:
    function: str
    field: Field | None
    group_by: Field | None
    result: Any
    groups: list[dict[str, Any]] | None
    truncated: bool


async def aggregate(
    principal: Principal,
    table_id: str,
    function: Any,
    field: Any = None,
    *,
    filters: Any = None,
    search: Any = None,
    group_by: Any = None,
) -> Aggregation:
    table = await get_table(principal, table_id)
    schema = await load_schema(table)
    await refresh_time_formulas(principal, table, schema)
    if function == "average":
        function = "avg"
    if function not in AGGREGATES:
        raise ValidationFailed(details={"function": [f"must be one of {', '.join(AGGREGATES)}"]})
    c = Compiler(schema, org_tz(principal), datetime.now(timezone.utc))
    d = c.d
    f: Field | None = None
    if function != "count" or field is not None:
        if field is None:
            raise ValidationFailed(details={"field": [f"required for {function}"]})
        f = schema.find(field)
        if f is None:
            raise field_not_found(str(field), [x.name for x in schema.fields], where="field")
    if function in ("sum", "avg") and f is not None and f.type not in _NUMERIC_TYPES:
        raise ValidationFailed(details={"field": [f"{function} needs a number field; '{f.name}' is {f.type}"]})
    if function in ("min", "max") and f is not None and f.type in UNSORTABLE:
        raise ValidationFailed(details={"field": [f"{function} does not apply to {f.type} fields"]})
    g: Field | None = None
    if group_by is not None:
        g = schema.find(group_by)
        if g is None:
            raise field_not_found(str(group_by), [x.name for x in schema.fields], where="group_by")
        if g.type in UNSORTABLE:
            raise ValidationFailed(details={"group_by": [f"cannot group by a {g.type} field"]})
    if f is not None and f.type not in UNSORTABLE:
        c.index_fields.add(f.id)
    if g is not None:
        c.index_fields.add(g.id)

    where = [f"table_id = {d.p(schema.table_id)}", "deleted_at IS NULL"]
    if filters not in (None, [], {}):
        where.append(c.filters(filters))
    if search is not None:
        if not isinstance(search, str):
            raise ValidationFailed(details={"search": ["must be a string"]})
        if search.strip():
            where.append(d.search(search))

    if function == "count":
        expr = "COUNT(*)" if f is None else f"COUNT({d.jv(f.id)})"
    elif function == "distinct_count":
        expr = f"COUNT(DISTINCT {d.jv(f.id)})"  # type: ignore[union-attr]
    elif function in ("sum", "avg"):
        assert f is not None
        column = d.jnum(f.id) if (d.name == "postgres" or f.type != "number") else d.jv(f.id)
        if d.name == "sqlite" and f.type != "number":
            column = f"(CASE WHEN {d.is_number(f.id)} THEN {d.jv(f.id)} END)"
        expr = f"{function.upper()}({column})"
    else:
        assert f is not None
        if d.name == "postgres":
            column = d.jnum(f.id) if f.type == "number" else d.jt(f.id)
        else:
            column = d.jv(f.id)
        expr = f"{function.upper()}({column})"

    for fid in sorted(c.index_fields):
        await sql.ensure_field_index(fid)
    # Without filters the aggregate reads only the index that covers it.
    hint = ""
    unfiltered = len(where) == 2
    if g is None and f is not None and unfiltered and f.type not in UNSORTABLE:
        hint = d.indexed_by(d.index_sql(f.id)[0])
    elif g is not None and unfiltered:
        if f is not None and f.id != g.id and f.type not in UNSORTABLE:
            hint = d.indexed_by(await sql.ensure_pair_index(g.id, f.id))
        elif f is None or f.id == g.id:
            hint = d.indexed_by(d.index_sql(g.id)[0])

    if g is None:
        rows = await sql.read(f"SELECT {expr} AS r FROM store_entries{hint} WHERE {' AND '.join(where)} LIMIT 1", d.params)
        result = _number(rows[0]["r"]) if rows else None
        if function in ("count", "distinct_count") and result is None:
            result = 0
        if function == "sum" and result is None:
            result = 0
        return Aggregation(function, f, None, result, None, False)

    key = d.jv(g.id)
    rows = await sql.read(
        f"SELECT {key} AS g, {expr} AS r FROM store_entries{hint} WHERE {' AND '.join(where)} "
        f"GROUP BY {key} ORDER BY {d.asc(key)} LIMIT {MAX_GROUPS + 1}",
        d.params,
    )
    truncated = len(rows) > MAX_GROUPS
    labels = {o["id"]: o["label"] for o in options_of(g)} if g.type == "select" else {}
    groups = []
    for row in rows[:MAX_GROUPS]:
        value: Any = row["g"]
        if d.name == "postgres" and isinstance(value, str):
            value = json.loads(value)
        if g.type == "checkbox" and d.name == "sqlite" and value is not None:
            value = bool(value)
        item: dict[str, Any] = {"value": value}
        if g.type == "select":
            item["label"] = labels.get(value)
        r = _number(row["r"])
        if function in ("count", "distinct_count", "sum") and r is None:
            r = 0
        item["result"] = r
        groups.append(item)
    return Aggregation(function, f, g, None, groups, truncated)
