"""Databases, tables and fields: create, list, get, update, soft delete — with plan limits,
default fields, type conversion (with dry run) and formula checks."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import ValidationFailed
from ..kernel.ids import new_id
from ..kernel.plans import enforce_limit
from ..kernel.transactions import atomic
from . import access, events, files, sql
from .access import (
    entry_batches,
    get_database,
    get_table,
    org_tz,
    ts_param,
    update_rows,
    well_formed,
)
from .computed import check_formula, dependents_of, mark_config_errors, recompute_table, search_text
from .entries import PROPAGATION_DEPTH, count_entries, create_entries
from .models import Database, Field, Table
from .schema import COMPUTED_TYPES, TableSchema, load_schema, touch
from .types import FIELD_TYPES, MAX_OPTIONS, Invalid, check_config, convert_value

__all__ = [
    "list_databases",
    "create_database",
    "get_database",
    "update_database",
    "delete_database",
    "list_tables",
    "create_table",
    "get_table_schema",
    "update_table",
    "delete_table",
    "list_fields",
    "create_field",
    "get_field",
    "update_field",
    "delete_field",
    "Conversion",
    "DEFAULT_FIELDS",
]

log = logging.getLogger("switchboard.store.structure")

_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$|^#[0-9A-Fa-f]{3}$")

DEFAULT_FIELDS: list[tuple[str, str, dict[str, Any]]] = [
    ("Name", "text", {}),
    (
        "Status",
        "select",
        {
            "options": [
                {"label": "To do", "color": "gray"},
                {"label": "In progress", "color": "blue"},
                {"label": "Done", "color": "green"},
            ]
        },
    ),
    ("Date", "date", {}),
    ("Done", "checkbox", {}),
]
DEFAULT_ENTRIES = 3
MAX_POSITION = 2**31 - 1  # positions are 32-bit integer columns (IntField)
MAX_TABLES_LISTED = 10_000  # a database's tables in one answer (plans allow at most a few dozen)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(details={field: ["must be a non-empty string"]})
    if len(value.strip()) > 200:
        raise ValidationFailed(details={field: ["at most 200 characters"]})
    return value.strip()


# ---------------------------------------------------------------- databases


async def list_databases(principal: Principal, *, limit: int = 50, offset: int = 0) -> tuple[list[Database], int]:
    require_scope(principal, "data.databases:read")
    q = Database.filter(organization_id=principal.org_id, deleted_at=None)
    return list(await q.order_by("created_at", "id").offset(offset).limit(limit)), await q.count()


def _color(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _COLOR.match(value):
        raise ValidationFailed(details={"color": ["must be a hex color such as #3B82F6"]})
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 5000:
        raise ValidationFailed(details={"description": ["must be a string of at most 5000 characters"]})
    return value


async def create_database(principal: Principal, name: Any, description: Any = None, color: Any = None) -> Database:
    require_scope(principal, "data.databases:write")
    name, description, color = _name(name), _description(description), _color(color)
    async with atomic():
        await enforce_limit(
            principal.organization.plan,
            "databases",
            lambda: Database.filter(organization_id=principal.org_id, deleted_at=None).count(),
        )
        return await Database.create(
            id=new_id("database"), organization_id=principal.org_id, name=name, description=description, color=color
        )


async def update_database(principal: Principal, database_id: str, changes: dict[str, Any]) -> Database:
    db = await get_database(principal, database_id, write=True)
    if "name" in changes:
        db.name = _name(changes["name"])
    if "description" in changes:
        db.description = _description(changes["description"])
    if "color" in changes:
        db.color = _color(changes["color"])
    await db.save()
    return db


async def _soft_delete_tables(table_ids: list[str], now: datetime) -> None:
    if not table_ids:
        return
    d = sql.dialect()
    stamp = d.p(ts_param(now))
    await sql.write(
        f"UPDATE store_entries SET deleted_at = {stamp} WHERE table_id IN ({d.p_list(table_ids)}) AND deleted_at IS NULL",
        d.params,
    )
    await Table.filter(id__in=table_ids).update(deleted_at=now)


async def _delete_tables(principal: Principal, database_id: str, table_ids: list[str], now: datetime) -> list[events.TableDeleted]:
    """Soft-delete tables with their entries, then recompute the tables elsewhere whose
    rollups, lookups or formulas read through a relation into them (found before the
    delete, while their plans still resolve). Returns the ``table.deleted`` events."""
    readers: dict[str, TableSchema] = {}
    for tid in table_ids:
        for schema, _ in await dependents_of(principal.org_id, tid):
            if schema.table_id not in table_ids:
                readers[schema.table_id] = schema
    await _soft_delete_tables(table_ids, now)
    await files.release(principal.org_id, now, table_ids=table_ids)
    for schema in readers.values():
        await _recompute(principal, schema)
    actor_id = principal.user.id if principal.user else None
    return [events.TableDeleted(principal.org_id, database_id, tid, actor_id, now) for tid in table_ids]


async def delete_database(principal: Principal, database_id: str) -> None:
    db = await get_database(principal, database_id, write=True)
    now = _now()
    async with atomic():
        ids = [str(i) for i in await Table.filter(database_id=db.id, deleted_at=None).values_list("id", flat=True)]
        deleted = await _delete_tables(principal, str(db.id), ids, now)
        db.deleted_at = now
        await db.save(update_fields=["deleted_at", "updated_at"])
        actor_id = principal.user.id if principal.user else None
        await events.emit([*deleted, events.DatabaseDeleted(principal.org_id, str(db.id), ids, actor_id, now)])


# ---------------------------------------------------------------- tables


async def list_tables(
    principal: Principal, database_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[list[TableSchema], int]:
    require_scope(principal, "data.tables:read")
    db = await get_database(principal, database_id) if "data.databases:read" in principal.scopes else None
    if db is None:
        db = await Database.get_or_none(id=database_id, organization_id=principal.org_id, deleted_at=None) if well_formed(database_id) else None
        if db is None:
            from ..kernel.errors import NotFound

            raise NotFound("Database not found.")
    q = Table.filter(database_id=db.id, deleted_at=None)
    tables = list(await q.order_by("position", "created_at", "id").offset(offset).limit(limit))
    fields = await Field.filter(table_id__in=[t.id for t in tables], deleted_at=None) if tables else []
    by_table: dict[str, list[Field]] = {}
    for f in fields:
        by_table.setdefault(str(f.table_id), []).append(f)  # type: ignore[attr-defined]
    schemas = [TableSchema(t, by_table.get(str(t.id), [])) for t in tables]
    for schema in schemas:
        await mark_config_errors(schema)
    return schemas, await q.count()


async def get_database_with_tables(principal: Principal, database_id: str) -> tuple[Database, list[TableSchema] | None]:
    """A database and all its tables (None when the caller may not read tables)."""
    db = await get_database(principal, database_id)
    if "data.tables:read" not in principal.scopes:
        return db, None
    tables, _ = await list_tables(principal, database_id, limit=MAX_TABLES_LISTED)
    return db, tables


async def create_table(principal: Principal, database_id: str, name: Any) -> TableSchema:
    require_scope(principal, "data.tables:write")
    db = await Database.get_or_none(id=database_id, organization_id=principal.org_id, deleted_at=None) if well_formed(database_id) else None
    if db is None:
        from ..kernel.errors import NotFound

        raise NotFound("Database not found.")
    name = _name(name)
    async with atomic():
        await enforce_limit(
            principal.organization.plan,
            "tables_per_database",
            lambda: Table.filter(database_id=db.id, deleted_at=None).count(),
        )
        position = await Table.filter(database_id=db.id, deleted_at=None).count()
        table = await Table.create(
            id=new_id("table"), organization_id=principal.org_id, database=db, name=name, position=position
        )
        for i, (fname, ftype, cfg) in enumerate(DEFAULT_FIELDS):
            await Field.create(
                id=new_id("field"), table=table, name=fname, type=ftype, config=check_config(ftype, cfg), position=i
            )
        # The seed's three empty entries, as many as the entries limit still allows.
        room = DEFAULT_ENTRIES
        from ..kernel.plans import get_plan

        limit = get_plan(principal.organization.plan).limits.get("entries")
        if limit is not None:
            room = max(0, min(room, limit - await count_entries(principal.org_id)))
        if room:
            await create_entries(principal, str(table.id), [None] * room)
    return await load_schema(table)


async def get_table_schema(principal: Principal, table_id: str) -> TableSchema:
    schema = await load_schema(await get_table(principal, table_id))
    await mark_config_errors(schema)
    return schema


async def update_table(principal: Principal, table_id: str, changes: dict[str, Any]) -> TableSchema:
    table = await get_table(principal, table_id, write=True)
    if "name" in changes:
        table.name = _name(changes["name"])
    if "position" in changes:
        pos = changes["position"]
        if not isinstance(pos, int) or isinstance(pos, bool) or not 0 <= pos <= MAX_POSITION:
            raise ValidationFailed(details={"position": ["must be a non-negative integer"]})
        table.position = pos
    await table.save()
    schema = await load_schema(table)
    await mark_config_errors(schema)
    return schema


async def delete_table(principal: Principal, table_id: str) -> None:
    table = await get_table(principal, table_id, write=True)
    async with atomic():
        deleted = await _delete_tables(principal, str(table.database_id), [str(table.id)], _now())  # type: ignore[attr-defined]
        await events.emit(deleted)


# ---------------------------------------------------------------- fields


async def list_fields(
    principal: Principal, table_id: str, *, limit: int = 50, offset: int = 0
) -> tuple[list[Field], int]:
    """One page of the table's live fields in position order, and how many there are."""
    schema = await load_schema(await get_table(principal, table_id))
    await mark_config_errors(schema)
    return schema.fields[offset : offset + limit], len(schema.fields)


async def _resolve_config(principal: Principal, schema: TableSchema, ftype: str, cfg: dict[str, Any], self_id: str | None) -> dict[str, Any]:
    """Check the parts of a config that point at other objects."""
    if ftype == "relation":
        target = await Table.get_or_none(id=cfg["table_id"], organization_id=principal.org_id, deleted_at=None)
        if target is None:
            raise ValidationFailed(details={"config.table_id": ["no such table in this organization"]})
    if ftype in ("rollup", "lookup"):
        rel = schema.find(cfg["relation_field"])
        if rel is None or rel.type != "relation" or rel.id == self_id:
            raise ValidationFailed(details={"config.relation_field": ["must name a relation field of this table"]})
        cfg["relation_field"] = rel.id
        target_table = await Table.get_or_none(id=(rel.config or {}).get("table_id"), deleted_at=None)
        target_schema = await load_schema(target_table) if target_table else None
        target_field = target_schema.find(cfg["target_field"]) if target_schema else None
        if target_field is None:
            raise ValidationFailed(details={"config.target_field": ["must name a field of the linked table"]})
        cfg["target_field"] = target_field.id
    return cfg


async def _recompute(principal: Principal, schema: TableSchema, depth: int = 0) -> None:
    """Re-materialize the table, then the tables reading it, as long as values change."""
    changed = await recompute_table(schema, principal.org_id, org_tz(principal))
    if not changed and depth > 0:
        return  # nothing new for the tables further down the chain
    readers = [s for s, _ in await dependents_of(principal.org_id, schema.table_id) if s.table_id != schema.table_id]
    if readers and depth >= PROPAGATION_DEPTH:
        log.warning("recompute stopped at depth %d: tables reading %s not recomputed", depth, schema.table_id)
        return
    for dep_schema in {s.table_id: s for s in readers}.values():
        await _recompute(principal, dep_schema, depth + 1)


def _check_type(ftype: Any) -> str:
    if ftype not in FIELD_TYPES:
        raise ValidationFailed(details={"type": [f"must be one of {', '.join(FIELD_TYPES)}"]})
    return str(ftype)


def _unique_name(schema: TableSchema, name: str, self_id: str | None = None) -> None:
    other = schema.by_key.get(name.lower())
    if other is not None and other.id != self_id:
        raise ValidationFailed(details={"name": ["a field with this name already exists in this table"]})


async def create_field(principal: Principal, table_id: str, name: Any, ftype: Any, config: Any = None) -> Field:
    table = await get_table(principal, table_id, write=True)
    name, ftype = _name(name), _check_type(ftype)
    cfg = check_config(ftype, config)
    async with atomic():
        await enforce_limit(
            principal.organization.plan,
            "fields_per_table",
            lambda: Field.filter(table_id=table.id, deleted_at=None).count(),
        )
        schema = await load_schema(table)
        _unique_name(schema, name)
        cfg = await _resolve_config(principal, schema, ftype, cfg, None)
        position = max((f.position for f in schema.fields), default=-1) + 1
        f = await Field.create(id=new_id("field"), table=table, name=name, type=ftype, config=cfg, position=position)
        await touch(table)
        if ftype in COMPUTED_TYPES:
            schema = await load_schema(table)
            await check_formula(schema, f.id)
            await _recompute(principal, schema)
    return f


@dataclass
class Conversion:
    field: Field
    dry_run: bool
    total: int
    converted: int
    failed: int
    examples: list[Any]


async def _convert_values(
    principal: Principal, schema: TableSchema, old: Field, new_type: str, new_cfg: dict[str, Any], *, apply: bool
) -> tuple[int, int, list[Any]]:
    tz = org_tz(principal)
    total = failed = 0
    examples: list[Any] = []
    now = _now()
    async for recs in entry_batches(schema.table_id, where=_has_value(old.id)):
        updates = []
        for rec in recs:
            value = rec.data.get(old.id)
            total += 1
            try:
                new_value = convert_value(old, new_type, new_cfg, value, tz)
            except Invalid:
                failed += 1
                if len(examples) < 5:
                    examples.append(value)
                new_value = None
            if apply:
                data = dict(rec.data)
                if new_value is None:
                    data.pop(old.id, None)
                else:
                    data[old.id] = new_value
                if data != rec.data:
                    updates.append((rec.pk, data, search_text(schema, data), rec.last_edited_by, now))
        if updates:
            await update_rows(updates)
    return total, total - failed, examples


async def _labels_for(schema: TableSchema, old: Field, new_type: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Converting into an option field: existing values become options (up to the cap)."""
    from .types import display_value

    d = sql.dialect()
    rows = await sql.read(
        f"SELECT DISTINCT {d.jt(old.id)} AS v FROM store_entries WHERE table_id = {d.p(schema.table_id)} "
        f"AND deleted_at IS NULL AND {d.jv(old.id)} IS NOT NULL LIMIT {MAX_OPTIONS + 1}",
        d.params,
        time_limit=30,
    )
    options = list(cfg.get("options") or [])
    known = {o["label"].lower() for o in options}
    import json as _json

    for row in rows:
        raw = row["v"]
        if old.type in ("multi_select", "lookup", "file", "relation", "user") and isinstance(raw, str) and raw.startswith("["):
            try:
                raw = _json.loads(raw)
            except ValueError:
                pass
        text = display_value(old, raw)
        if text is None or isinstance(text, bool):
            continue
        labels = [s.strip() for s in str(text).split(",")] if new_type == "multi_select" else [str(text).strip()]
        for label in labels:
            if label and label.lower() not in known and len(options) < MAX_OPTIONS:
                known.add(label.lower())
                options.append({"label": label, "color": "gray"})
    return check_config(new_type, {**cfg, "options": options}, existing=cfg)


async def get_field(principal: Principal, field_id: str, *, write: bool = False) -> tuple[Table, Field]:
    """The field and its table; a computed field whose config no longer resolves carries
    ``config_error``."""
    table, f = await access.get_field(principal, field_id, write=write)
    if f.type in COMPUTED_TYPES:
        await mark_config_errors(await load_schema(table), [f])
    return table, f


async def update_field(principal: Principal, field_id: str, changes: dict[str, Any], *, dry_run: bool = False) -> Field | Conversion:
    table, f = await access.get_field(principal, field_id, write=True)
    schema = await load_schema(table)
    new_name = _name(changes["name"]) if "name" in changes else f.name
    new_type = _check_type(changes.get("type", changes.get("field_type", f.type)))
    raw_cfg = changes.get("config")
    if raw_cfg is not None and not isinstance(raw_cfg, dict):
        raise ValidationFailed(details={"config": ["must be an object"]})
    base = dict(f.config or {}) if new_type == f.type else {}
    merged = {**base, **(raw_cfg or {})}  # config is merged, not replaced
    cfg = check_config(new_type, merged, existing=base)
    _unique_name(schema, new_name, f.id)
    cfg = await _resolve_config(principal, schema, new_type, cfg, f.id)
    type_changed = new_type != f.type
    if type_changed and new_type in ("select", "multi_select") and f.type not in ("select", "multi_select"):
        cfg = await _labels_for(schema, f, new_type, cfg)
    options_changed = f.type in ("select", "multi_select") and new_type == f.type and cfg.get("options") != (f.config or {}).get("options")
    # a relation pointed at another table: rollups and lookups over it read that table now
    relinked = f.type == "relation" and new_type == f.type and cfg.get("table_id") != (f.config or {}).get("table_id")
    if dry_run:
        total, ok, examples = (
            await _convert_values(principal, schema, f, new_type, cfg, apply=False) if type_changed else (0, 0, [])
        )
        await mark_config_errors(schema, [f])
        return Conversion(f, True, total, ok, total - ok, examples)
    async with atomic():
        renamed = new_name != f.name
        if type_changed:
            await _convert_values(principal, schema, f, new_type, cfg, apply=True)
            await sql.drop_field_index(f.id)
            if f.type == "file":  # the field holds no files any more
                await files.release(principal.org_id, _now(), field_ids=[f.id])
        if options_changed:
            # removed options: their ids vanish from entries
            kept = {o["id"] for o in cfg.get("options", [])}
            removed = [o["id"] for o in (f.config or {}).get("options", []) if o["id"] not in kept]
            if removed:
                await _drop_option_values(schema, f, set(removed))
        f.name, f.type, f.config = new_name, new_type, cfg
        f.config_error = None  # checked above (resolved) or below (check_formula)
        await f.save()
        await touch(table)
        schema = await load_schema(table)
        if f.type in COMPUTED_TYPES or (renamed or type_changed or options_changed or relinked) and any(
            x.type in COMPUTED_TYPES for x in schema.fields
        ):
            if f.type in COMPUTED_TYPES:
                await check_formula(schema, f.id)
            await _recompute(principal, schema)
        elif type_changed or options_changed:
            for dep_schema, _ in await dependents_of(principal.org_id, schema.table_id):
                await _recompute(principal, dep_schema, 1)
    return f


def _has_value(field_id: str) -> Callable[[sql.Dialect], str]:
    return lambda d: f"{d.jv(field_id)} IS NOT NULL"


async def _drop_option_values(schema: TableSchema, f: Field, removed: set[str]) -> None:
    now = _now()
    async for recs in entry_batches(schema.table_id, where=_has_value(f.id)):
        updates = []
        for rec in recs:
            value = rec.data.get(f.id)
            data = dict(rec.data)
            if isinstance(value, list):
                kept = [v for v in value if v not in removed]
                if kept:
                    data[f.id] = kept
                else:
                    data.pop(f.id)
            elif value in removed:
                data.pop(f.id)
            if data != rec.data:
                updates.append((rec.pk, data, search_text(schema, data), rec.last_edited_by, now))
        if updates:
            await update_rows(updates)


async def delete_field(principal: Principal, field_id: str) -> None:
    table, f = await access.get_field(principal, field_id, write=True)
    async with atomic():
        f.deleted_at = _now()
        await f.save(update_fields=["deleted_at", "updated_at"])
        await touch(table)
        schema = await load_schema(table)
        if any(x.type in COMPUTED_TYPES for x in schema.fields) or f.type in COMPUTED_TYPES:
            await _recompute(principal, schema)
        else:
            for dep_schema, _ in await dependents_of(principal.org_id, schema.table_id):
                await _recompute(principal, dep_schema, 1)
        if f.type == "file":  # after the entries it rewrites: locks go entry rows, then file rows
            await files.release(principal.org_id, f.deleted_at, field_ids=[f.id])
