"""Entries: create, read, update (merge), delete, bulk — with validation per field type,
materialized computed fields, dependents recomputed, change events and the entries limit."""

from __future__ import annotations

import asyncio
import gc
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

from ..kernel.auth import Principal
from ..kernel.errors import NotFound, SwitchboardError, ValidationFailed
from ..kernel.ids import new_sortable_ids
from ..models.core import Membership
from ..kernel.plans import enforce_limit
from ..kernel.transactions import atomic
from . import events, files, sql
from .access import (
    ENTRY_COLUMNS,
    EntryRecord,
    entry_batches,
    fetch_entries,
    fetch_entry,
    get_table,
    insert_rows,
    org_tz,
    record,
    ts_param,
    update_rows,
)
from .computed import EvaluationPlan, Resolver, dependents_of, plan_for, search_fields, search_text
from .models import Field, Table
from .schema import COMPUTED_TYPES, TableSchema, field_not_found, load_schema
from .types import Invalid, normalizer

__all__ = [
    "create_entry",
    "create_entries",
    "get_entry",
    "update_entry",
    "delete_entry",
    "bulk",
    "BulkResult",
    "count_entries",
    "attach_file",
    "detach_file",
    "hold",
    "MAX_BULK",
]

log = logging.getLogger("switchboard.store.entries")

MAX_BULK = 100
_SLICE = 5000
_GC_PAUSE_ROWS = 500
PROPAGATION_DEPTH = 8  # tables deep; relations may form cycles, so the chain has an end
PROPAGATION_BATCH = 2000


async def count_entries(org_id: str) -> int:
    d = sql.dialect()
    rows = await sql.read(
        f"SELECT COUNT(*) AS n FROM store_entries WHERE organization_id = {d.p(org_id)} AND deleted_at IS NULL",
        d.params,
    )
    return int(rows[0]["n"])


@dataclass
class WriteContext:
    principal: Principal
    table: Table
    schema: TableSchema
    plan: EvaluationPlan
    resolver: Resolver
    now: datetime
    events: list[events.EntryChanged] = field(default_factory=list)
    emits: bool = True  # whether anyone wants this organization's change events
    _normalizers: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    _keys: dict[str, tuple[str, Callable[[Any], Any], str]] = field(default_factory=dict)
    _deps: dict[str, Any] = field(default_factory=dict)
    _search: tuple[str, ...] | None = None

    @property
    def search_fields(self) -> tuple[str, ...]:
        if self._search is None:
            self._search = search_fields(self.schema)
        return self._search

    @property
    def org_id(self) -> str:
        return self.principal.org_id

    @property
    def file_fields(self) -> list[Field]:
        return [f for f in self.schema.fields if f.type == "file"]

    @property
    def actor_id(self) -> str | None:
        return self.principal.user.id if self.principal.user else None

    def normalize(self, fid: str) -> Callable[[Any], Any]:
        fn = self._normalizers.get(fid)
        if fn is None:
            fn = normalizer(self.schema.by_id[fid], self.resolver.tz)
            self._normalizers[fid] = fn
        return fn

    def validator(self, key: Any) -> tuple[str, Callable[[Any], Any], str]:
        """(field id, value normalizer, field name) for what a client calls a field;
        compiled once per key and write."""
        compiled = self._keys.get(key) if isinstance(key, str) else None
        if compiled is None:
            f = self.schema.find(key)
            if f is None:
                raise field_not_found(str(key), [x.name for x in self.schema.fields], where="values")
            compiled = (f.id, self.normalize(f.id), f.name)
            self._keys[key] = compiled
        return compiled

    def event(
        self, kind: Any, entry_id: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
        *, created_at: datetime | None = None, updated_at: datetime | None = None,
    ) -> None:
        if not self.emits:
            return
        self.events.append(
            events.EntryChanged(
                type=kind,
                organization_id=self.org_id,
                database_id=str(self.table.database_id),  # type: ignore[attr-defined]
                table_id=str(self.table.id),
                entry_id=entry_id,
                before=before,
                after=after,
                actor_id=self.actor_id,
                occurred_at=self.now,
                changed_fields=events.diff(before, after),
                created_at=created_at,
                updated_at=updated_at,
            )
        )


async def write_context(principal: Principal, table: Table) -> WriteContext:
    schema = await load_schema(table)
    plan = await plan_for(schema)
    return WriteContext(
        principal, table, schema, plan, Resolver(principal.org_id, org_tz(principal)), datetime.now(timezone.utc),
        emits=await events.wanted(principal.org_id),
    )


# ---------------------------------------------------------------- validation


def _normalize(ctx: WriteContext, values: Any, *, drop_empty: bool = False) -> dict[str, Any]:
    """Client values -> {field id: stored value or None}. 422 on unknown fields or bad values.
    ``drop_empty`` leaves empty values out (a new entry has no cell to clear)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValidationFailed(details={"values": ["must be an object mapping field names or ids to values"]})
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] | None = None
    compiled = ctx._keys
    for key, value in values.items():
        c = compiled.get(key) if isinstance(key, str) else None
        fid, fn, name = c if c is not None else ctx.validator(key)
        try:
            stored = fn(value)
        except Invalid as exc:
            if errors is None:
                errors = {}
            errors.setdefault(name, []).append(str(exc))
            continue
        if stored is not None or not drop_empty:
            out[fid] = stored
    if errors:
        raise ValidationFailed("Values don't match their field types.", details=errors)
    return out


async def _check_references(
    ctx: WriteContext, rows: Sequence[dict[str, Any]], owners: Sequence[str | None] | None = None
) -> None:
    """Relation values must be live entries of the linked table; user values members; file
    values confirmed files of the organization that no other cell holds (stored as their
    file values). ``owners``: each row's entry id (None, the default: new entries)."""
    errors: dict[str, list[str]] = {}
    for f in ctx.schema.fields:
        if f.type == "file":
            wanted_files = {v for row in rows for v in (row.get(f.id) or ())}
            if not wanted_files:
                continue
            found_files = await files.confirmed(ctx.org_id, wanted_files)
            missing = sorted(wanted_files - found_files.keys())
            if missing:
                errors.setdefault(f.name, []).append(
                    "no such confirmed file in this organization: " + ", ".join(missing[:10])
                )
                continue
            for index, row in enumerate(rows):
                owner = owners[index] if owners is not None else None
                taken = [why for i in row.get(f.id) or () if (why := files.check_owner(found_files[i], owner, f.id))]
                if taken:
                    errors.setdefault(f.name, []).extend(taken[:10])
                elif row.get(f.id):
                    row[f.id] = [files.file_value(found_files[i]) for i in row[f.id]]
        elif f.type == "relation":
            wanted = {v for row in rows for v in (row.get(f.id) or ())}
            if not wanted:
                continue
            target = (f.config or {}).get("table_id")
            found = {r.id for r in await fetch_entries(ctx.org_id, list(wanted), table_id=target)}
            missing = sorted(wanted - found)
            if missing:
                errors.setdefault(f.name, []).append(
                    "no such entry in the linked table: " + ", ".join(missing[:10])
                )
        elif f.type == "user":
            wanted = set()
            for row in rows:
                v = row.get(f.id)
                if v is not None:
                    wanted.update(v if isinstance(v, list) else [v])
            if not wanted:
                continue
            members = await Membership.filter(organization_id=ctx.org_id).select_related("user")
            by_key = {}
            for m in members:
                by_key[m.user.id] = m.user.id
                by_key[m.user.email.lower()] = m.user.id
            unknown = sorted(v for v in wanted if v.lower() not in by_key and v not in by_key)
            if unknown:
                errors.setdefault(f.name, []).append("not a member of this organization: " + ", ".join(unknown[:10]))
                continue
            for row in rows:
                v = row.get(f.id)
                if isinstance(v, list):
                    row[f.id] = list(dict.fromkeys(by_key.get(x, by_key.get(x.lower())) for x in v))
                elif v is not None:
                    row[f.id] = by_key.get(v, by_key.get(v.lower()))
    if errors:
        raise ValidationFailed("Values don't match their field types.", details=errors)


def _merge(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for fid, value in changes.items():
        if value is None:
            out.pop(fid, None)
        else:
            out[fid] = value
    return out


def visible(schema: TableSchema, data: dict[str, Any]) -> dict[str, Any]:
    """Values of live fields only, keyed by field id (deleted fields' values are kept but hidden)."""
    return {f.id: data[f.id] for f in schema.fields if f.id in data}


# ---------------------------------------------------------------- dependents


async def _propagate(ctx: WriteContext, table_id: str, display_ids: list[str], depth: int = 0) -> None:
    """Recompute entries elsewhere whose rollups/lookups/formulas read the changed entries:
    every linking entry, in keyset batches, however many there are."""
    if not display_ids:
        return
    if depth >= PROPAGATION_DEPTH:
        # Relations can form cycles; past this depth the chain is cut, and said so.
        log.warning(
            "dependents propagation stopped at depth %d: %d changed entries of table %s not propagated further",
            depth, len(display_ids), table_id,
        )
        return
    if table_id not in ctx._deps:
        ctx._deps[table_id] = await dependents_of(ctx.org_id, table_id)
    for schema, rel in ctx._deps[table_id]:
        plan = await plan_for(schema)
        resolver = Resolver(ctx.org_id, ctx.resolver.tz, ctx.now)
        sub = WriteContext(ctx.principal, schema.table, schema, plan, resolver, ctx.now, ctx.events, ctx.emits)
        sub._deps = ctx._deps
        def linking(d: sql.Dialect, rel_id: str = rel.id) -> str:
            return d.array_any(rel_id, display_ids)

        async for recs in entry_batches(schema.table_id, where=linking, batch=PROPAGATION_BATCH, time_limit=30):
            # linked entries must be read fresh: they are what just changed
            resolver.linked.clear()
            await resolver.prepare(plan, (r.data for r in recs))
            updates = []
            changed_ids = []
            for rec in recs:
                data = resolver.apply(plan, dict(rec.data), rec)
                if data != rec.data:
                    updates.append((rec.pk, data, search_text(schema, data), rec.last_edited_by, ctx.now))
                    changed_ids.append(rec.id)
                    sub.event("entry.updated", rec.id, visible(schema, rec.data), visible(schema, data), created_at=rec.created_at)
            if updates:
                await update_rows(updates)
                await _propagate(sub, schema.table_id, changed_ids, depth + 1)
            if len(recs) < PROPAGATION_BATCH:
                break


# ---------------------------------------------------------------- operations


@contextmanager
def _gc_paused(rows: int) -> Iterator[None]:
    """Large batches allocate many long-lived dicts; the collector's repeated passes over
    them cost more than the batch. Paused only around synchronous work (no await inside)."""
    if rows < _GC_PAUSE_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _create_many(ctx: WriteContext, values_list: Sequence[Any]) -> list[EntryRecord]:
    """The one insert path (single creates, bulk items and imports): values checked with
    per-field validators compiled once, computed fields evaluated only when the table has
    some, one executemany per slice (and one statement filling the full-text index).

    Callers hold a transaction, so a bad value in a later slice undoes the earlier ones."""
    schema = ctx.schema
    # Relation, user and file values are checked across the whole batch at once (one query per
    # field, every missing id reported), so such tables validate everything up front.
    upfront = any(f.type in ("relation", "user", "file") for f in schema.fields)
    normalized: list[dict[str, Any]] = []
    if upfront:
        with _gc_paused(len(values_list)):
            normalized = [_normalize(ctx, v, drop_empty=True) for v in values_list]
        await _check_references(ctx, normalized)
        await ctx.resolver.prepare(ctx.plan, normalized)
    out: list[EntryRecord] = []
    actor = ctx.actor_id
    tid = str(ctx.table.id)
    org_id = ctx.org_id
    now = ctx.now
    plan = ctx.plan
    resolver = ctx.resolver
    fields = ctx.search_fields
    emit = ctx.emits
    pending: asyncio.Future[None] | None = None
    # Large imports: the next slice is validated and prepared while the previous one is
    # being inserted (SQLite releases the GIL while it works).
    try:
        for start in range(0, len(values_list), _SLICE):
            inserts = []
            with _gc_paused(min(_SLICE, len(values_list) - start)):
                if upfront:
                    chunk = normalized[start : start + _SLICE]
                else:
                    chunk = [_normalize(ctx, v, drop_empty=True) for v in values_list[start : start + _SLICE]]
            if not upfront:
                await resolver.prepare(plan, chunk)
            with _gc_paused(len(chunk)):
                ids = new_sortable_ids("entry", len(chunk))
                for eid, data in zip(ids, chunk):
                    rec = EntryRecord(0, eid, tid, data, now, now, actor, actor)
                    if not plan.empty:
                        resolver.apply(plan, data, rec)
                    inserts.append((eid, org_id, tid, data, search_text(schema, data, fields), actor, now))
                    out.append(rec)
                    if emit:
                        ctx.event("entry.created", eid, None, visible(schema, data))
            if ctx.file_fields:
                await files.reassign(org_id, now, [c for eid, data in zip(ids, chunk) for c in _file_cells(ctx, eid, {}, data)])
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(insert_rows(inserts))
        if pending is not None:
            await pending
    except Exception:
        if pending is not None:
            # the error to report is the one raised here; the insert is rolled back with it
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()
        raise
    return out


async def _locked_entry(ctx: WriteContext, entry_id: str) -> EntryRecord:
    d = sql.dialect()
    lock = " FOR UPDATE" if d.name == "postgres" else ""
    rows = await sql.read(
        f"SELECT {ENTRY_COLUMNS} FROM store_entries WHERE display_id = {d.p(entry_id)} "
        f"AND table_id = {d.p(str(ctx.table.id))} AND deleted_at IS NULL LIMIT 1{lock}",
        d.params,
    )
    if not rows:
        raise NotFound("Entry not found.")
    return record(rows[0])


async def _update_one(ctx: WriteContext, entry_id: str, values: Any) -> EntryRecord:
    rec = await _locked_entry(ctx, entry_id)
    changes = _normalize(ctx, _unchanged_files_left_out(ctx, values, rec.data))
    await _check_references(ctx, [changes], [rec.id])
    return await _write_changes(ctx, rec, changes)


def _unchanged_files_left_out(ctx: WriteContext, values: Any, data: dict[str, Any]) -> Any:
    """A file cell sent back exactly as it reads is no change: a client that writes a whole
    entry back keeps its files (even cells from before files were checked)."""
    if not isinstance(values, dict) or not ctx.file_fields:
        return values
    same = []
    for key, value in values.items():
        f = ctx.schema.find(key)
        if f is not None and f.type == "file" and value == data.get(f.id) and value is not None:
            same.append(key)
    return {k: v for k, v in values.items() if k not in same} if same else values


def _file_cells(ctx: WriteContext, entry_id: str, before: dict[str, Any], after: dict[str, Any]) -> list[files.Cell]:
    table_id = str(ctx.table.id)
    return [
        files.Cell(table_id, entry_id, f.id, files.ids_in(before.get(f.id)), files.ids_in(after.get(f.id)))
        for f in ctx.file_fields
        if before.get(f.id) != after.get(f.id)
    ]


async def _write_changes(ctx: WriteContext, rec: EntryRecord, changes: dict[str, Any]) -> EntryRecord:
    """Merge checked, stored-form ``changes`` into the locked entry ``rec`` and write it."""
    data = _merge(rec.data, changes)
    await ctx.resolver.prepare(ctx.plan, [data])
    ctx.resolver.apply(ctx.plan, data, rec)
    if data == rec.data:
        return rec  # nothing changed: no write, no event
    if ctx.file_fields:
        await files.reassign(ctx.org_id, ctx.now, _file_cells(ctx, rec.id, rec.data, data))
    await update_rows([(rec.pk, data, search_text(ctx.schema, data), ctx.actor_id, ctx.now)])
    before = rec.data
    rec.data, rec.updated_at, rec.last_edited_by = data, ctx.now, ctx.actor_id
    ctx.event("entry.updated", rec.id, visible(ctx.schema, before), visible(ctx.schema, data), created_at=rec.created_at)
    await _propagate(ctx, str(ctx.table.id), [rec.id])
    return rec


async def _delete_one(ctx: WriteContext, entry_id: str) -> None:
    rec = await _locked_entry(ctx, entry_id)
    d = sql.dialect()
    await sql.write(
        f"UPDATE store_entries SET deleted_at = {d.p(ts_param(ctx.now))} WHERE id = {d.p(rec.pk)}", d.params
    )
    await files.release(ctx.org_id, ctx.now, entry_ids=[rec.id])
    ctx.event(
        "entry.deleted", rec.id, visible(ctx.schema, rec.data), None, created_at=rec.created_at, updated_at=rec.updated_at
    )
    await _propagate(ctx, str(ctx.table.id), [rec.id])


async def _enforce_entries(principal: Principal, adding: int) -> None:
    if adding > 0:
        await enforce_limit(principal.organization.plan, "entries", lambda: count_entries(principal.org_id), adding)


async def create_entries(principal: Principal, table_id: str, values_list: Sequence[Any]) -> list[EntryRecord]:
    """Create many entries in one transaction (one multi-row insert). The import path."""
    table = await get_table(principal, table_id, write=True)
    ctx = await write_context(principal, table)
    async with atomic():
        await _enforce_entries(principal, len(values_list))
        out = await _create_many(ctx, values_list)
        await events.emit(ctx.events)
    return out


async def create_entry(principal: Principal, table_id: str, values: Any = None) -> tuple[TableSchema, EntryRecord]:
    table = await get_table(principal, table_id, write=True)
    ctx = await write_context(principal, table)
    async with atomic():
        await _enforce_entries(principal, 1)
        (rec,) = await _create_many(ctx, [values])
        await _propagate(ctx, str(table.id), [rec.id])
        await events.emit(ctx.events)
    return ctx.schema, rec


async def get_entry(principal: Principal, entry_id: str) -> tuple[TableSchema, EntryRecord]:
    rec = await fetch_entry(principal, entry_id)
    table = await get_table(principal, rec.table_id)
    from .query import refresh_time_formulas

    schema = await load_schema(table)
    if await refresh_time_formulas(principal, table, schema):
        rec = await fetch_entry(principal, entry_id)
    return schema, rec


async def update_entry(principal: Principal, entry_id: str, values: Any) -> tuple[TableSchema, EntryRecord]:
    rec = await fetch_entry(principal, entry_id, write=True)
    table = await get_table(principal, rec.table_id, write=True)
    ctx = await write_context(principal, table)
    async with atomic():
        rec = await _update_one(ctx, entry_id, values)
        await events.emit(ctx.events)
    return ctx.schema, rec


async def delete_entry(principal: Principal, entry_id: str) -> None:
    rec = await fetch_entry(principal, entry_id, write=True)
    table = await get_table(principal, rec.table_id, write=True)
    ctx = await write_context(principal, table)
    async with atomic():
        await _delete_one(ctx, entry_id)
        await events.emit(ctx.events)


async def hold(principal: Principal, entry_id: str) -> None:
    """Take the entry's row lock first, inside the caller's transaction (PostgreSQL; SQLite has
    one writer): whoever changes a file row and then its entry takes locks in the order entry
    writes do (entry, then file rows), so the two never deadlock."""
    d = sql.dialect()
    if d.name != "postgres":
        return
    await sql.read(
        f"SELECT id FROM store_entries WHERE display_id = {d.p(entry_id)} AND organization_id = {d.p(principal.org_id)} "
        "FOR UPDATE",
        d.params,
    )


async def attach_file(principal: Principal, entry_id: str, field_id: str, file_id: str) -> None:
    """Add a confirmed file to the entry's file field (after the files already there)."""
    found = await files.confirmed(principal.org_id, [file_id])
    if file_id not in found:
        raise NotFound("File not found.")
    value = files.file_value(found[file_id])
    await _change_files(principal, entry_id, field_id, lambda held: [*(v for v in held if v.get("file_id") != file_id), value])


async def detach_file(principal: Principal, entry_id: str, field_id: str, file_id: str) -> None:
    """Take a deleted file out of the entry's file field (nothing to do once the entry or the
    field is gone)."""
    try:
        await _change_files(principal, entry_id, field_id, lambda held: [v for v in held if v.get("file_id") != file_id])
    except (NotFound, ValidationFailed):
        pass


async def _change_files(
    principal: Principal, entry_id: str, field_id: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
) -> None:
    """Rewrite one file cell under the entry's lock, so concurrent confirms and deletes all land."""
    rec = await fetch_entry(principal, entry_id, write=True)
    table = await get_table(principal, rec.table_id, write=True)
    ctx = await write_context(principal, table)
    f = ctx.schema.find(field_id)
    if f is None or f.type != "file":
        raise ValidationFailed(details={"field_id": ["must be a file field of the entry's table"]})
    async with atomic():
        rec = await _locked_entry(ctx, entry_id)
        held = [v for v in rec.data.get(f.id) or () if isinstance(v, dict)]
        await _write_changes(ctx, rec, {f.id: change(held) or None})
        await events.emit(ctx.events)


# ---------------------------------------------------------------- bulk


@dataclass
class BulkResult:
    total: int
    succeeded: int
    failed: int
    results: list[dict[str, Any]]
    schema: TableSchema


class _RolledBack(Exception):
    pass


def _error_body(exc: SwitchboardError) -> dict[str, Any]:
    return dict(exc.to_body()["error"])


async def bulk(principal: Principal, table_id: str, operations: Any, *, atomic_all: bool = False) -> BulkResult:
    """Up to 100 create/update/delete operations, each with its own result. With
    ``atomic_all`` the whole batch is one transaction: any failure rolls everything back (422)."""
    if not isinstance(operations, list) or not operations:
        raise ValidationFailed(details={"operations": ["must be a non-empty list"]})
    if len(operations) > MAX_BULK:
        raise ValidationFailed(details={"operations": [f"at most {MAX_BULK} operations per request"]})
    table = await get_table(principal, table_id, write=True)
    ctx = await write_context(principal, table)
    results: list[dict[str, Any]] = []
    creates = sum(1 for op in operations if isinstance(op, dict) and op.get("action") == "create")

    async def run_one(index: int, op: Any) -> dict[str, Any]:
        if not isinstance(op, dict):
            raise ValidationFailed(details={f"operations[{index}]": ["must be an object"]})
        action = op.get("action")
        entry_id = op.get("id", op.get("entry_id"))
        if action == "create":
            (rec,) = await _create_many(ctx, [op.get("values")])
            await _propagate(ctx, str(table.id), [rec.id])
            return {"index": index, "action": action, "status": "ok", "id": rec.id, "entry": rec}
        if action in ("update", "delete"):
            if not isinstance(entry_id, str) or not entry_id:
                raise ValidationFailed(details={f"operations[{index}].id": ["required for update and delete"]})
            if action == "update":
                rec = await _update_one(ctx, entry_id, op.get("values"))
                return {"index": index, "action": action, "status": "ok", "id": rec.id, "entry": rec}
            await _delete_one(ctx, entry_id)
            return {"index": index, "action": action, "status": "ok", "id": entry_id}
        raise ValidationFailed(details={f"operations[{index}].action": ["must be create, update or delete"]})

    try:
        async with atomic():
            await _enforce_entries(principal, creates)
            failures = 0
            for index, op in enumerate(operations):
                mark = len(ctx.events)
                try:
                    async with atomic():  # a savepoint: a failed item undoes only itself
                        results.append(await run_one(index, op))
                except SwitchboardError as exc:
                    del ctx.events[mark:]
                    failures += 1
                    results.append(
                        {
                            "index": index,
                            "action": op.get("action") if isinstance(op, dict) else None,
                            "status": "error",
                            "id": op.get("id", op.get("entry_id")) if isinstance(op, dict) else None,
                            "error": _error_body(exc),
                        }
                    )
            if atomic_all and failures:
                raise _RolledBack()
            await events.emit(ctx.events)
    except _RolledBack:
        for item in results:
            if item["status"] == "ok":
                item["status"] = "rolled_back"
                item.pop("entry", None)
        raise ValidationFailed(
            f"{failures} of {len(operations)} operations failed; nothing was applied (atomic).",
            details={"results": results},
        ) from None
    succeeded = sum(1 for r in results if r["status"] == "ok")
    return BulkResult(len(operations), succeeded, len(operations) - succeeded, results, ctx.schema)
