"""A table's live fields, and resolving what a client calls a field or an option.

Field names are matched case-insensitively, ids exactly; an unknown name is a 422
``field_not_found`` with did-you-mean suggestions. Select options accept labels or ``op_`` ids.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..kernel.errors import ValidationFailed
from .models import Field, Table

__all__ = ["TableSchema", "load_schema", "cached_schema", "field_not_found", "COMPUTED_TYPES", "SYSTEM_FIELDS"]

COMPUTED_TYPES = frozenset({"formula", "rollup", "lookup"})

# Names formulas (and sorts/filters) may use for an entry's own metadata.
SYSTEM_FIELDS = ("id", "created_date", "updated_date", "created_by", "last_edited_by")


def field_not_found(name: str, candidates: Iterable[str], *, code: str = "field_not_found", where: str = "") -> ValidationFailed:
    names = list(candidates)
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)
    suggestions = [lowered[c] for c in close]
    message = f"Field '{name}' not found in this table."
    if suggestions:
        message += " Did you mean " + " or ".join(f"'{s}'" for s in suggestions) + "?"
    details: dict[str, Any] = {"field": name, "suggestions": suggestions}
    if where:
        details["location"] = where
    return ValidationFailed(message, code=code, details=details)


@dataclass
class TableSchema:
    table: Table
    fields: list[Field]
    by_id: dict[str, Field] = field(default_factory=dict)
    by_key: dict[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fields.sort(key=lambda f: (f.position, f.created_at, f.id))
        self.by_id = {f.id: f for f in self.fields}
        self.by_key = {f.name.lower(): f for f in self.fields}

    @property
    def table_id(self) -> str:
        return str(self.table.id)

    def find(self, ref: Any) -> Field | None:
        if not isinstance(ref, str):
            return None
        return self.by_id.get(ref) or self.by_key.get(ref.strip().lower())

    def resolve(self, ref: Any, *, code: str = "field_not_found", where: str = "") -> Field:
        f = self.find(ref)
        if f is None:
            raise field_not_found(str(ref), [x.name for x in self.fields], code=code, where=where)
        return f

    @property
    def primary(self) -> Field | None:
        """The field that names an entry (shown for relations): the first by position."""
        return self.fields[0] if self.fields else None


def options_of(f: Field) -> list[dict[str, Any]]:
    return list((f.config or {}).get("options") or [])


_cache: dict[str, tuple[Any, TableSchema]] = {}
_CACHE_SIZE = 512


async def load_schema(table: Table) -> TableSchema:
    """The table's live fields. Cached per table version: every field change bumps the
    table's ``updated_at`` (``touch``), so a stale schema is never served, in any process."""
    hit = _cache.get(str(table.id))
    if hit is not None and hit[0] == table.updated_at:
        return TableSchema(table=table, fields=list(hit[1].fields))
    rows = await Field.filter(table_id=table.id, deleted_at=None)
    schema = TableSchema(table=table, fields=list(rows))
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[str(table.id)] = (table.updated_at, schema)
    return schema


def cached_schema(table_id: str) -> tuple[Any, TableSchema] | None:
    """(table version, schema) last loaded for the table, unverified: the caller checks the
    version against the table row before trusting it."""
    hit = _cache.get(table_id)
    if hit is None:
        return None
    return hit[0], TableSchema(table=hit[1].table, fields=list(hit[1].fields))


async def touch(table: Table) -> None:
    """Mark the table's schema as changed (call inside the transaction that changes a field)."""
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    await Table.filter(id=table.id).update(updated_at=now)
    table.updated_at = now
    _cache.pop(str(table.id), None)
