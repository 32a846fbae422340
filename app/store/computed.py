"""Formula, rollup and lookup fields: materialized into the entry's JSON on every write so
that SQL can filter, sort and aggregate them like stored fields.

* A table's computed fields are evaluated in dependency order (rollups and lookups first,
  then formulas topologically); circular references are refused when a field is saved.
* When an entry changes, entries of other tables whose relations point at it (and whose
  rollups, lookups or formulas read through those relations) are recomputed too.
* Formulas using TODAY()/NOW() are recomputed for the whole table when the organization's
  local day changes (checked before each read of the table).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from ..kernel.errors import ValidationFailed
from ..models.core import Membership
from .access import EntryRecord, entry_batches, fetch_entries
from .models import Field, Table
from .schema import COMPUTED_TYPES, SYSTEM_FIELDS, TableSchema, field_not_found, load_schema
from .types import display_value, revive, stored_result

__all__ = ["EvaluationPlan", "plan_for", "check_formula", "mark_config_errors", "Resolver", "recompute_table", "dependents_of"]


_formula: Any = None


def _formula_module() -> Any:
    # imported late (formula imports this package); kept, as apply() runs once per entry
    global _formula
    if _formula is None:
        from . import formula

        _formula = formula
    return _formula


@dataclass
class Computed:
    field: Field
    parsed: Any = None  # formula only
    refs: dict[str, Field | str] = dataclasses.field(default_factory=dict)  # name in formula -> field or system name
    relation: Field | None = None  # rollup/lookup
    target: Field | None = None
    target_schema: TableSchema | None = None


@dataclass
class EvaluationPlan:
    """How a table's computed fields are evaluated: their order and what must be fetched."""

    schema: TableSchema
    order: list[Computed]
    uses_now: bool
    needs_relations: list[Field]  # relation fields whose linked entries must be fetched
    needs_users: bool
    broken: dict[str, str] = dataclasses.field(default_factory=dict)  # field id -> why it evaluates to empty

    @property
    def empty(self) -> bool:
        return not self.order


def _resolve_ref(schema: TableSchema, name: str) -> Field | str | None:
    for f in schema.fields:
        if f.name == name:
            return f
    by_key = schema.by_key.get(name.lower())
    if by_key is not None:
        return by_key
    if name in SYSTEM_FIELDS:
        return name
    return None


def parse_formula(expression: str) -> Any:
    fm = _formula_module()
    try:
        return fm.parse(expression)
    except fm.FormulaSyntaxError as exc:
        position = getattr(exc, "position", None)
        message = getattr(exc, "message", None) or str(exc)
        raise ValidationFailed(
            f"Formula syntax error: {message}",
            details={"config.expression": [f"{message} (at position {position})"], "position": position},
        ) from exc


async def _target_schema(table_id: str, cache: dict[str, TableSchema]) -> TableSchema | None:
    if table_id not in cache:
        table = await Table.get_or_none(id=table_id, deleted_at=None)
        if table is None:
            return None
        cache[table_id] = await load_schema(table)
    return cache[table_id]


_plans: dict[str, tuple[Any, EvaluationPlan]] = {}


async def plan_for(schema: TableSchema, cache: dict[str, TableSchema] | None = None, *, check: str | None = None) -> EvaluationPlan:
    """The evaluation order of the table's computed fields. A field whose config no longer
    resolves (an unknown reference, a deleted relation, linked table or target field, a
    cycle) evaluates to empty and is listed in ``broken`` with the reason; when it is the
    field ``check`` (the one being saved), a ValidationFailed is raised instead."""
    if not any(f.type in COMPUTED_TYPES for f in schema.fields):
        return EvaluationPlan(schema, [], False, [], False)
    if cache is None and check is None and not any(f.type in ("rollup", "lookup") for f in schema.fields):
        hit = _plans.get(schema.table_id)
        if hit is not None and hit[0] == schema.table.updated_at:
            return hit[1]
        plan = await plan_for(schema, {})
        if len(_plans) > 512:
            _plans.clear()
        _plans[schema.table_id] = (schema.table.updated_at, plan)
        return plan
    cache = cache if cache is not None else {}
    cache[schema.table_id] = schema
    items: dict[str, Computed] = {}
    broken: dict[str, str] = {}
    uses_now = False
    needs_rel: dict[str, Field] = {}
    needs_users = False

    def bad(f: Field, error: ValidationFailed, reason: str) -> None:
        if f.id == check:
            raise error
        broken[f.id] = reason

    for f in schema.fields:
        if f.type not in COMPUTED_TYPES:
            continue
        c = Computed(field=f)
        cfg = f.config or {}
        if f.type == "formula":
            try:
                c.parsed = parse_formula(cfg.get("expression", ""))
            except ValidationFailed as exc:
                bad(f, exc, "config.expression: " + "; ".join(exc.details["config.expression"]))
                continue
            uses_now = uses_now or bool(getattr(c.parsed, "uses_now", False))
            unknown: list[str] = []
            for name in sorted(c.parsed.references):
                ref = _resolve_ref(schema, name)
                if ref is None:
                    unknown.append(name)  # reads as empty
                    continue
                c.refs[name] = ref
                if isinstance(ref, Field):
                    if ref.type == "relation":
                        needs_rel[ref.id] = ref
                    if ref.type == "user":
                        needs_users = True
                elif ref in ("created_by", "last_edited_by"):
                    needs_users = True
            if unknown:
                err = field_not_found(unknown[0], [x.name for x in schema.fields], where="config.expression")
                bad(
                    f,
                    ValidationFailed(f"Formula references unknown field '{unknown[0]}'.", details=err.details),
                    "config.expression: references unknown field " + ", ".join(f"'{n}'" for n in unknown),
                )
        else:
            rel = schema.find(cfg.get("relation_field"))
            if rel is None or rel.type != "relation":
                message = "must name a relation field of this table"
                bad(f, ValidationFailed(details={"config.relation_field": [message]}), f"config.relation_field: {message}")
                continue
            target_schema = await _target_schema((rel.config or {}).get("table_id", ""), cache)
            target = target_schema.find(cfg.get("target_field")) if target_schema else None
            if target is None:
                message = "must name a field of the linked table"
                why = "the linked table no longer exists" if target_schema is None else "no such field in the linked table"
                bad(f, ValidationFailed(details={"config.target_field": [message]}), f"config.target_field: {why}")
                continue
            c.relation, c.target, c.target_schema = rel, target, target_schema
            needs_rel[rel.id] = rel
            if target.type == "user":
                needs_users = True
        items[f.id] = c

    # Topological order: rollups/lookups read other tables only; formulas may read anything.
    order: list[Computed] = []
    state: dict[str, int] = {}

    def visit(fid: str, path: list[str]) -> None:
        if state.get(fid) == 2:
            return
        if state.get(fid) == 1:
            names = [items[x].field.name for x in path[path.index(fid):]] + [items[fid].field.name]
            raise ValidationFailed(
                "Circular reference between formula fields: " + " -> ".join(names) + ".",
                details={"config.expression": ["circular reference: " + " -> ".join(names)]},
            )
        state[fid] = 1
        for ref in items[fid].refs.values():
            if isinstance(ref, Field) and ref.id in items:
                visit(ref.id, path + [fid])
        state[fid] = 2
        order.append(items[fid])

    for fid in list(items):
        try:
            visit(fid, [])
        except ValidationFailed as exc:
            # the fields on the path are left out (they evaluate to empty)
            left_out = [x for x in state if state[x] == 1]
            if check in left_out:
                raise
            for x in left_out:
                state[x] = 2
                broken[x] = "config.expression: " + exc.details["config.expression"][0]
    return EvaluationPlan(schema, order, uses_now, list(needs_rel.values()), needs_users, broken)


async def check_formula(schema: TableSchema, field_id: str) -> None:
    """Raise ValidationFailed if the computed field ``field_id`` cannot be evaluated; the
    table's other computed fields are not checked (a broken one evaluates to empty)."""
    await plan_for(schema, check=field_id)


async def mark_config_errors(schema: TableSchema, fields: Iterable[Field] | None = None) -> None:
    """Set ``config_error`` on the computed fields (of ``fields``, by default all of the
    table's) whose config no longer resolves, and clear it on the others."""
    plan = await plan_for(schema)
    for f in schema.fields if fields is None else fields:
        f.config_error = plan.broken.get(f.id) if f.type in COMPUTED_TYPES else None


class Resolver:
    """Prefetched context for evaluating many entries: linked entries, people, now."""

    def __init__(self, org_id: str, tz: ZoneInfo, now: datetime | None = None) -> None:
        self.org_id = org_id
        self.tz = tz
        self.now = now or datetime.now(timezone.utc)
        self.users: dict[str, str] | None = None
        self.linked: dict[str, EntryRecord] = {}
        self.schemas: dict[str, TableSchema] = {}

    async def prepare(self, plan: EvaluationPlan, rows: Iterable[dict[str, Any]]) -> None:
        if plan.needs_users and self.users is None:
            members = await Membership.filter(organization_id=self.org_id).select_related("user")
            self.users = {m.user.id: (m.user.name or m.user.email) for m in members}
        wanted: set[str] = set()
        for data in rows:
            for rel in plan.needs_relations:
                for v in data.get(rel.id) or ():
                    if v not in self.linked:
                        wanted.add(v)
        if wanted:
            for rec in await fetch_entries(self.org_id, list(wanted)):
                self.linked[rec.id] = rec
        for rel in plan.needs_relations:
            tid = (rel.config or {}).get("table_id", "")
            if tid and tid not in self.schemas:
                s = await _target_schema(tid, self.schemas)
                if s is not None:
                    self.schemas[tid] = s

    def _linked(self, rel: Field, data: dict[str, Any]) -> list[EntryRecord]:
        tid = (rel.config or {}).get("table_id")
        out = []
        for v in data.get(rel.id) or ():
            rec = self.linked.get(v)
            if rec is not None and rec.table_id == tid:
                out.append(rec)
        return out

    def _relation_display(self, rel: Field, data: dict[str, Any]) -> str | None:
        schema = self.schemas.get((rel.config or {}).get("table_id", ""))
        primary = schema.primary if schema else None
        names = []
        for rec in self._linked(rel, data):
            value = display_value(primary, rec.data.get(primary.id), users=self.users) if primary else None
            names.append("" if value is None else str(value))
        return ", ".join(names) if names else None

    def formula_input(self, ref: Field | str, data: dict[str, Any], meta: EntryRecord | None) -> Any:
        if isinstance(ref, str):
            if meta is None:
                return None
            if ref == "id":
                return meta.id
            if ref == "created_date":
                return meta.created_at
            if ref == "updated_date":
                return meta.updated_at
            who = meta.created_by if ref == "created_by" else meta.last_edited_by
            return (self.users or {}).get(who or "", who)
        value = data.get(ref.id)
        t = ref.type
        if t == "checkbox":
            return bool(value)
        if value is None:
            return None
        if t == "date":
            return revive(value)
        if t == "relation":
            return self._relation_display(ref, data)
        if t in ("formula", "rollup"):
            return revive(value)
        if t in ("select", "multi_select", "file", "user", "lookup"):
            return display_value(ref, value, users=self.users)
        return value

    def rollup(self, c: Computed, data: dict[str, Any]) -> Any:
        assert c.relation is not None and c.target is not None
        linked = self._linked(c.relation, data)
        values = [rec.data.get(c.target.id) for rec in linked]
        if c.field.type == "lookup":
            out = []
            for v in values:
                shown = display_value(c.target, v, users=self.users)
                if shown is not None and shown != "":
                    out.append(shown)
            return out or None
        fn = (c.field.config or {}).get("function", "count")
        if fn == "count":
            return len(linked)
        if fn == "concat":
            parts = [display_value(c.target, v, users=self.users) for v in values]
            text = ", ".join(str(p) for p in parts if p not in (None, ""))
            return text or None
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if fn == "sum":
            return sum(nums)
        if fn == "avg":
            return sum(nums) / len(nums) if nums else None
        comparable: list[Any] = nums or [v for v in values if isinstance(v, str) and v]
        if not comparable:
            return None
        return min(comparable) if fn == "min" else max(comparable)

    def apply(self, plan: EvaluationPlan, data: dict[str, Any], meta: EntryRecord | None) -> dict[str, Any]:
        """Evaluate the plan into ``data`` (in place) and return it."""
        if plan.empty:
            return data
        fm = _formula_module()
        for c in plan.order:
            if c.field.type == "formula":
                inputs = {name: self.formula_input(ref, data, meta) for name, ref in c.refs.items()}
                try:
                    result = fm.evaluate(c.parsed, inputs, now=self.now, tz=self.tz)
                except Exception:  # noqa: BLE001 - a formula must never break a write
                    result = None
            else:
                result = self.rollup(c, data)
            value = stored_result(result)
            if value is None:
                data.pop(c.field.id, None)
            else:
                data[c.field.id] = value
        return data


def search_fields(schema: TableSchema) -> tuple[str, ...]:
    """Ids of the fields whose text the full-text index covers (text, url, and formulas
    whose value is text), in field order."""
    return tuple(f.id for f in schema.fields if f.type in ("text", "url", "formula"))


def search_text(schema: TableSchema, data: dict[str, Any], fields: tuple[str, ...] | None = None) -> str | None:
    get = data.get
    parts = [v for fid in (fields if fields is not None else search_fields(schema)) if isinstance(v := get(fid), str) and v]
    return "\n".join(parts) or None


async def recompute_table(schema: TableSchema, org_id: str, tz: ZoneInfo, *, now: datetime | None = None) -> int:
    """Re-materialize every entry of the table (a formula/rollup/lookup field changed)."""
    from .access import update_rows

    plan = await plan_for(schema)
    resolver = Resolver(org_id, tz, now)
    changed = 0
    stamp = datetime.now(timezone.utc)
    computed_ids = {f.id for f in schema.fields if f.type in COMPUTED_TYPES}
    async for recs in entry_batches(schema.table_id):
        await resolver.prepare(plan, (r.data for r in recs))
        updates = []
        for rec in recs:
            before = {k: rec.data.get(k) for k in computed_ids}
            data = dict(rec.data)
            # values of computed fields that no longer exist are dropped too
            for k in list(data):
                if k in computed_ids:
                    data.pop(k)
            resolver.apply(plan, data, rec)
            if {k: data.get(k) for k in computed_ids} != before or len(data) != len(rec.data):
                updates.append((rec.pk, data, search_text(schema, data), rec.last_edited_by, stamp))
        if updates:
            await update_rows(updates)
            changed += len(updates)
    return changed


async def dependents_of(org_id: str, table_id: str) -> list[tuple[TableSchema, Field]]:
    """(table schema, relation field) pairs whose computed values read entries of ``table_id``."""
    rels = await Field.filter(
        type="relation", deleted_at=None, table__organization_id=org_id
    ).select_related("table")
    out: list[tuple[TableSchema, Field]] = []
    for rel in rels:
        if (rel.config or {}).get("table_id") != table_id or rel.table.deleted_at is not None:
            continue
        schema = await load_schema(rel.table)
        # A rollup or lookup over the relation depends on it even when its target no longer
        # resolves (a deleted field or table): its stale value must still be cleared.
        reads = any(
            f.type in ("rollup", "lookup") and (f.config or {}).get("relation_field") == rel.id for f in schema.fields
        )
        if reads or any(r.id == rel.id for r in (await plan_for(schema)).needs_relations):
            out.append((schema, rel))
    return out
