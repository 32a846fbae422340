"""Data API: databases, tables, fields, entries, query, bulk, aggregate, notes.

Handlers parse, call one ``app.store`` function, and return the shape ``app.store.shapes``
builds. Integers in bodies are bounded here (64 bits at most) so none reaches the database
unchecked; everything else is validated by the store, which MCP calls too."""

from __future__ import annotations

from typing import Any

from pydantic import Field as Bounds
from pydantic import ValidationError
from quart import Blueprint, Response, request

from ...kernel.errors import ValidationFailed
from ...store import entries, entry_notes, query, structure
from ...store import shapes
from .request_io import MAX_INT, Body, actor, query_int, json_object, validation_details

bp = Blueprint("data", __name__, url_prefix="/api/v1")

PAGE = {"minimum": 1, "maximum": 200}


def _typed(model: type[Body], body: dict[str, Any]) -> Any:
    """Check the typed keys of a body the store takes as a whole (422 with per-field details)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from exc


class QueryBody(Body):
    search: str | None = None
    limit: int | None = Bounds(None, ge=1, le=query.MAX_CURSOR_LIMIT)
    offset: int | None = Bounds(None, ge=0, le=MAX_INT)
    cursor: str | None = None


class TableChanges(Body):
    position: int | None = Bounds(None, ge=0, le=structure.MAX_POSITION)


class FieldChanges(Body):
    dry_run: bool = False


class BulkBody(Body):
    atomic: bool = False


def _no_content() -> Response:
    return Response(status=204)


def _page_args() -> tuple[int, int]:
    return query_int("limit", 50, **PAGE), query_int("offset", 0)


# ---------------------------------------------------------------- databases


@bp.get("/databases")
async def list_databases() -> dict[str, Any]:
    limit, offset = _page_args()
    rows, total = await structure.list_databases(await actor(), limit=limit, offset=offset)
    return shapes.list_json([shapes.database_json(db) for db in rows], total, limit, offset)


@bp.post("/databases")
async def create_database() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    db = await structure.create_database(principal, body.get("name"), body.get("description"), body.get("color"))
    return {"data": shapes.database_json(db)}, 201


@bp.get("/databases/<database_id>")
async def get_database(database_id: str) -> dict[str, Any]:
    return {"data": shapes.database_json(await structure.get_database(await actor(), database_id))}


@bp.patch("/databases/<database_id>")
async def update_database(database_id: str) -> dict[str, Any]:
    principal = await actor()
    db = await structure.update_database(principal, database_id, await json_object())
    return {"data": shapes.database_json(db)}


@bp.delete("/databases/<database_id>")
async def delete_database(database_id: str) -> Response:
    await structure.delete_database(await actor(), database_id)
    return _no_content()


# ---------------------------------------------------------------- tables


@bp.get("/databases/<database_id>/tables")
async def list_tables(database_id: str) -> dict[str, Any]:
    limit, offset = _page_args()
    rows, total = await structure.list_tables(await actor(), database_id, limit=limit, offset=offset)
    return shapes.list_json([shapes.table_json(s) for s in rows], total, limit, offset)


@bp.post("/databases/<database_id>/tables")
async def create_table(database_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    return {"data": shapes.table_json(await structure.create_table(principal, database_id, body.get("name")))}, 201


@bp.get("/tables/<table_id>")
async def get_table(table_id: str) -> dict[str, Any]:
    return {"data": shapes.table_json(await structure.get_table_schema(await actor(), table_id))}


@bp.patch("/tables/<table_id>")
async def update_table(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    _typed(TableChanges, body)
    return {"data": shapes.table_json(await structure.update_table(principal, table_id, body))}


@bp.delete("/tables/<table_id>")
async def delete_table(table_id: str) -> Response:
    await structure.delete_table(await actor(), table_id)
    return _no_content()


# ---------------------------------------------------------------- fields


@bp.get("/tables/<table_id>/fields")
async def list_fields(table_id: str) -> dict[str, Any]:
    limit, offset = _page_args()
    rows, total = await structure.list_fields(await actor(), table_id, limit=limit, offset=offset)
    return shapes.list_json([shapes.field_json(f) for f in rows], total, limit, offset)


@bp.post("/tables/<table_id>/fields")
async def create_field(table_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    f = await structure.create_field(
        principal, table_id, body.get("name"), body.get("type", body.get("field_type")), body.get("config")
    )
    return {"data": shapes.field_json(f)}, 201


@bp.get("/fields/<field_id>")
async def get_field(field_id: str) -> dict[str, Any]:
    _, f = await structure.get_field(await actor(), field_id)
    return {"data": shapes.field_json(f)}


@bp.patch("/fields/<field_id>")
async def update_field(field_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    result = await structure.update_field(principal, field_id, body, dry_run=_typed(FieldChanges, body).dry_run)
    if isinstance(result, structure.Conversion):
        return {"data": shapes.conversion_json(result)}
    return {"data": shapes.field_json(result)}


@bp.delete("/fields/<field_id>")
async def delete_field(field_id: str) -> Response:
    await structure.delete_field(await actor(), field_id)
    return _no_content()


# ---------------------------------------------------------------- entries


@bp.get("/tables/<table_id>/entries")
async def list_entries(table_id: str) -> dict[str, Any]:
    principal = await actor()
    cursor = request.args.get("cursor")
    page = await query.query_entries(
        principal,
        table_id,
        sort=query.parse_sort_param(request.args.get("sort")),
        search=request.args.get("search"),
        limit=query_int("limit", 50, minimum=1, maximum=query.MAX_CURSOR_LIMIT if cursor is not None else query.MAX_OFFSET_LIMIT),
        offset=query_int("offset", 0),
        cursor=cursor or None,
        use_cursor=cursor is not None,
    )
    return shapes.page_json(page)


@bp.post("/tables/<table_id>/entries/query")
async def query_entries(table_id: str) -> dict[str, Any]:
    principal = await actor()
    raw = await json_object()
    body = _typed(QueryBody, raw)
    page = await query.query_entries(
        principal,
        table_id,
        filters=raw.get("filters"),
        sort=raw.get("sort"),
        search=body.search,
        limit=body.limit,
        offset=body.offset,
        cursor=body.cursor or None,
        use_cursor="cursor" in raw,
    )
    return shapes.page_json(page)


@bp.post("/tables/<table_id>/entries")
async def create_entry(table_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await json_object()
    schema, rec = await entries.create_entry(principal, table_id, body.get("values"))
    return {"data": shapes.entry_json(schema, rec)}, 201


@bp.get("/entries/<entry_id>")
async def get_entry(entry_id: str) -> dict[str, Any]:
    schema, rec = await entries.get_entry(await actor(), entry_id)
    return {"data": shapes.entry_json(schema, rec)}


@bp.patch("/entries/<entry_id>")
async def update_entry(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    if "values" not in body:
        raise ValidationFailed(details={"values": ["required"]})
    schema, rec = await entries.update_entry(principal, entry_id, body["values"])
    return {"data": shapes.entry_json(schema, rec)}


@bp.delete("/entries/<entry_id>")
async def delete_entry(entry_id: str) -> Response:
    await entries.delete_entry(await actor(), entry_id)
    return _no_content()


@bp.post("/tables/<table_id>/entries/bulk")
async def bulk(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    atomic_all = _typed(BulkBody, body).atomic
    result = await entries.bulk(principal, table_id, body.get("operations"), atomic_all=atomic_all)
    return {"data": shapes.bulk_json(result)}


@bp.post("/tables/<table_id>/aggregate")
async def aggregate(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    agg = await query.aggregate(
        principal,
        table_id,
        body.get("function"),
        body.get("field", body.get("field_id")),
        filters=body.get("filters"),
        search=body.get("search"),
        group_by=body.get("group_by"),
    )
    return {"data": shapes.aggregate_json(agg)}


# ---------------------------------------------------------------- notes


@bp.get("/entries/<entry_id>/notes")
async def get_notes(entry_id: str) -> dict[str, Any]:
    return {"data": shapes.notes_json(entry_id, await entry_notes.get_notes(await actor(), entry_id))}


@bp.patch("/entries/<entry_id>/notes")
async def update_notes(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    if "notes" not in body:  # the seed: omitting the key returns the notes unchanged
        return {"data": shapes.notes_json(entry_id, await entry_notes.get_notes(principal, entry_id))}
    return {"data": shapes.notes_json(entry_id, await entry_notes.replace_notes(principal, entry_id, body["notes"]))}


@bp.put("/entries/<entry_id>/notes")
async def put_notes(entry_id: str) -> dict[str, Any]:
    return await update_notes(entry_id)


@bp.post("/entries/<entry_id>/notes/append")
async def append_notes(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    nodes = body.get("content", body.get("nodes"))
    return {"data": shapes.notes_json(entry_id, await entry_notes.append_notes(principal, entry_id, nodes))}
