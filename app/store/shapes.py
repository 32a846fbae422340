"""JSON shapes of store objects as the contract shows them (shared by REST and MCP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..kernel.timefmt import iso
from .access import EntryRecord
from .models import Database, Field
from .schema import TableSchema

if TYPE_CHECKING:
    from .entries import BulkResult
    from .query import Aggregation, Page
    from .structure import Conversion

__all__ = [
    "database_json",
    "field_json",
    "table_json",
    "entry_json",
    "list_json",
    "page_json",
    "conversion_json",
    "bulk_json",
    "aggregate_json",
    "notes_json",
]


def database_json(db: Database) -> dict[str, Any]:
    return {
        "id": db.id,
        "name": db.name,
        "description": db.description,
        "color": db.color,
        "created_at": iso(db.created_at),
        "updated_at": iso(db.updated_at),
    }


def field_json(f: Field) -> dict[str, Any]:
    """A field. A formula, rollup or lookup whose config no longer resolves (its relation,
    linked table or target field was deleted; it names an unknown field) also carries
    ``"config_error": "<config key>: <why>"``; its values are empty until it is repaired
    (PATCH its config) or deleted."""
    out = {
        "id": f.id,
        "name": f.name,
        "type": f.type,
        "position": f.position,
        "config": f.config or {},
        "created_at": iso(f.created_at),
    }
    if f.config_error:
        out["config_error"] = f.config_error
    return out


def table_json(schema: TableSchema) -> dict[str, Any]:
    t = schema.table
    return {
        "id": t.id,
        "database_id": t.database_id,  # type: ignore[attr-defined]
        "name": t.name,
        "position": t.position,
        "fields": [field_json(f) for f in schema.fields],
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def entry_json(schema: TableSchema, rec: EntryRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "table_id": rec.table_id,
        "values": {f.id: rec.data[f.id] for f in schema.fields if f.id in rec.data},
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


def list_json(items: Sequence[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The contract's list envelope: ``{"data": [...], "meta": {"total", "limit", "offset"}}``."""
    return {"data": list(items), "meta": {"total": total, "limit": limit, "offset": offset}}


def page_json(page: Page) -> dict[str, Any]:
    """A ``query.Page``: offset pages carry ``total``/``offset``; keyset pages ``next_cursor``."""
    meta: dict[str, Any] = {"limit": page.limit}
    if page.offset is not None:
        meta.update(total=page.total, offset=page.offset)
    else:
        meta.update(next_cursor=page.next_cursor, has_more=page.has_more)
        if page.total is not None:
            meta["total"] = page.total
    return {"data": [entry_json(page.schema, e) for e in page.entries], "meta": meta}


def conversion_json(conv: Conversion) -> dict[str, Any]:
    """A field type change previewed with ``dry_run``: nothing was written."""
    return {
        "dry_run": True,
        "field": field_json(conv.field),
        "total": conv.total,
        "convertible": conv.converted,
        "unconvertible": conv.failed,
        "examples": conv.examples,
    }


def bulk_json(result: BulkResult) -> dict[str, Any]:
    items = []
    for item in result.results:
        item = dict(item)
        rec = item.pop("entry", None)
        if rec is not None:
            item["entry"] = entry_json(result.schema, rec)
        items.append(item)
    return {"total": result.total, "succeeded": result.succeeded, "failed": result.failed, "results": items}


def aggregate_json(agg: Aggregation) -> dict[str, Any]:
    out: dict[str, Any] = {"function": agg.function}
    if agg.field is not None:
        out["field"] = agg.field.id
    if agg.group_by is None:
        out["result"] = agg.result
    else:
        out.update(group_by=agg.group_by.id, groups=agg.groups, truncated=agg.truncated)
    return out


def notes_json(entry_id: str, doc: Any) -> dict[str, Any]:
    return {"entry_id": entry_id, "notes": doc, "has_notes": doc is not None}
