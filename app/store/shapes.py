"""JSON shapes of store objects as the contract shows them (shared by REST and MCP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Sequence, TypeVar, cast

from typing_extensions import NotRequired, TypedDict

from ..kernel.timefmt import iso
from .access import EntryRecord
from .events import EntryChanged
from .models import Database, Field
from .schema import TableSchema

if TYPE_CHECKING:
    from .entries import BulkResult
    from .query import Aggregation, Page
    from .structure import Conversion

__all__ = [
    "DatabaseJSON", "FieldJSON", "TableJSON", "EntryJSON", "ListMeta", "ListJSON", "PageMeta", "PageJSON",
    "ConversionJSON", "BulkItemJSON", "BulkJSON", "AggregateGroupJSON", "AggregateJSON", "NotesJSON", "EntryChangeJSON",
    "database_json",
    "field_json",
    "table_json",
    "entry_json",
    "entry_change_json",
    "list_json",
    "page_json",
    "conversion_json",
    "bulk_json",
    "aggregate_json",
    "notes_json",
]


T = TypeVar("T")


class DatabaseJSON(TypedDict):
    id: str
    name: str
    description: str | None
    color: str | None
    created_at: str | None
    updated_at: str | None


class FieldJSON(TypedDict):
    id: str
    name: str
    type: str
    position: int
    config: dict[str, Any]
    created_at: str | None
    config_error: NotRequired[str]


class TableJSON(TypedDict):
    id: str
    database_id: str
    name: str
    position: int
    fields: list[FieldJSON]
    created_at: str | None
    updated_at: str | None


class EntryJSON(TypedDict):
    id: str
    table_id: str
    values: dict[str, Any]  # field id -> value
    created_at: str | None
    updated_at: str | None


class ListMeta(TypedDict):
    total: int
    limit: int
    offset: int


class ListJSON(TypedDict, Generic[T]):
    data: list[T]
    meta: ListMeta


class PageMeta(TypedDict):
    limit: int
    total: NotRequired[int | None]
    offset: NotRequired[int]
    next_cursor: NotRequired[str | None]
    has_more: NotRequired[bool]


class PageJSON(TypedDict):
    data: list[EntryJSON]
    meta: PageMeta


class ConversionJSON(TypedDict):
    dry_run: bool
    field: FieldJSON
    total: int
    convertible: int
    unconvertible: int
    examples: list[Any]


class BulkItemJSON(TypedDict):
    index: int
    action: Any  # as sent: create | update | delete (anything else fails the item)
    status: str  # ok | error
    id: Any
    entry: NotRequired[EntryJSON]
    error: NotRequired[dict[str, Any]]


class BulkJSON(TypedDict):
    total: int
    succeeded: int
    failed: int
    results: list[BulkItemJSON]


class AggregateGroupJSON(TypedDict):
    value: Any
    label: NotRequired[str | None]
    result: Any  # a number; min and max of dates give a date


class AggregateJSON(TypedDict):
    function: str
    field: NotRequired[str]
    result: NotRequired[Any]
    group_by: NotRequired[str]
    groups: NotRequired[list[AggregateGroupJSON]]
    truncated: NotRequired[bool]


class NotesJSON(TypedDict):
    entry_id: str
    notes: dict[str, Any] | None  # a TipTap document
    has_notes: bool


def database_json(db: Database) -> DatabaseJSON:
    return {
        "id": db.id,
        "name": db.name,
        "description": db.description,
        "color": db.color,
        "created_at": iso(db.created_at),
        "updated_at": iso(db.updated_at),
    }


def field_json(f: Field) -> FieldJSON:
    """A field. A formula, rollup or lookup whose config no longer resolves (its relation,
    linked table or target field was deleted; it names an unknown field) also carries
    ``"config_error": "<config key>: <why>"``; its values are empty until it is repaired
    (PATCH its config) or deleted."""
    out: FieldJSON = {
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


def table_json(schema: TableSchema) -> TableJSON:
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


def entry_json(schema: TableSchema, rec: EntryRecord) -> EntryJSON:
    return {
        "id": rec.id,
        "table_id": rec.table_id,
        "values": {f.id: rec.data[f.id] for f in schema.fields if f.id in rec.data},
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }


class EntryChangeJSON(EntryJSON):
    """An entry change as organization webhooks carry it: the entry as REST shows it (as it
    was, for a delete), its database, the fields the change touched and, for an update,
    their values before it (null: it was empty)."""

    database_id: str
    changed_fields: list[str]
    previous_values: NotRequired[dict[str, Any]]
    deleted_at: NotRequired[str | None]


def entry_change_json(change: EntryChanged) -> EntryChangeJSON:
    deleted = change.type == "entry.deleted"
    out = EntryChangeJSON(
        id=change.entry_id,
        table_id=change.table_id,
        values=dict((change.before if deleted else change.after) or {}),
        created_at=iso(change.created_at or change.occurred_at),
        updated_at=iso(change.updated_at or change.occurred_at),
        database_id=change.database_id,
        changed_fields=list(change.changed_fields),
    )
    if change.type == "entry.updated":
        before = change.before or {}
        out["previous_values"] = {f: before.get(f) for f in change.changed_fields}
    if deleted:
        out["deleted_at"] = iso(change.occurred_at)
    return out


def list_json(items: Sequence[T], total: int, limit: int, offset: int) -> ListJSON[T]:
    """The contract's list envelope: ``{"data": [...], "meta": {"total", "limit", "offset"}}``."""
    return {"data": list(items), "meta": {"total": total, "limit": limit, "offset": offset}}


def page_json(page: Page) -> PageJSON:
    """A ``query.Page``: offset pages carry ``total``/``offset``; keyset pages ``next_cursor``."""
    meta: PageMeta = {"limit": page.limit}
    if page.offset is not None:
        meta["total"], meta["offset"] = page.total, page.offset
    else:
        meta["next_cursor"], meta["has_more"] = page.next_cursor, page.has_more
        if page.total is not None:
            meta["total"] = page.total
    return {"data": [entry_json(page.schema, e) for e in page.entries], "meta": meta}


def conversion_json(conv: Conversion) -> ConversionJSON:
    """A field type change previewed with ``dry_run``: nothing was written."""
    return {
        "dry_run": True,
        "field": field_json(conv.field),
        "total": conv.total,
        "convertible": conv.converted,
        "unconvertible": conv.failed,
        "examples": conv.examples,
    }


def bulk_json(result: BulkResult) -> BulkJSON:
    items: list[BulkItemJSON] = []
    for item in result.results:
        rec = item.get("entry")
        shown = BulkItemJSON(index=item["index"], action=item["action"], status=item["status"], id=item["id"])
        if rec is not None:
            shown["entry"] = entry_json(result.schema, rec)
        if "error" in item:
            shown["error"] = item["error"]
        items.append(shown)
    return {"total": result.total, "succeeded": result.succeeded, "failed": result.failed, "results": items}


def aggregate_json(agg: Aggregation) -> AggregateJSON:
    out: AggregateJSON = {"function": agg.function}
    if agg.field is not None:
        out["field"] = agg.field.id
    if agg.group_by is None:
        out["result"] = agg.result
    else:
        out["group_by"] = agg.group_by.id
        out["groups"] = cast(list[AggregateGroupJSON], agg.groups or [])
        out["truncated"] = agg.truncated
    return out


def notes_json(entry_id: str, doc: Any) -> NotesJSON:
    return {"entry_id": entry_id, "notes": doc, "has_notes": doc is not None}
