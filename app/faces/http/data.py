"""Data API: databases, tables, fields, entries, query, bulk, aggregate, notes.

Handlers validate the body with the operation's model from ``faces.arguments`` (which the
MCP server's tools use too), call one ``app.store`` function, and return the shape
``app.store.shapes`` builds. The store checks what depends on the table."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from ...store import entries, entry_notes, query, structure
from ...store import shapes
from ..arguments import (
    DatabaseChanges, DatabaseCreate, EntryAggregate, EntryBulk, EntryChanges, EntryQuery, EntryValues, FieldChanges,
    FieldCreate, NotesAppend, NotesReplace, PAGE_MAX, TableChanges, TableCreate, changes, checked,
)
from .request_io import actor, query_int, json_object

bp = Blueprint("data", __name__, url_prefix="/api/v1")


def _no_content() -> Response:
    return Response(status=204)


def _page_args() -> tuple[int, int]:
    return query_int("limit", 50, minimum=1, maximum=PAGE_MAX), query_int("offset", 0)


# ---------------------------------------------------------------- databases


@bp.get("/databases")
async def list_databases() -> dict[str, Any]:
    limit, offset = _page_args()
    rows, total = await structure.list_databases(await actor(), limit=limit, offset=offset)
    return shapes.list_json([shapes.database_json(db) for db in rows], total, limit, offset)


@bp.post("/databases")
async def create_database() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = checked(DatabaseCreate, await json_object())
    db = await structure.create_database(principal, body.name, body.description, body.color)
    return {"data": shapes.database_json(db)}, 201


@bp.get("/databases/<database_id>")
async def get_database(database_id: str) -> dict[str, Any]:
    return {"data": shapes.database_json(await structure.get_database(await actor(), database_id))}


@bp.patch("/databases/<database_id>")
async def update_database(database_id: str) -> dict[str, Any]:
    principal = await actor()
    db = await structure.update_database(principal, database_id, changes(checked(DatabaseChanges, await json_object())))
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
    body = checked(TableCreate, await json_object())
    return {"data": shapes.table_json(await structure.create_table(principal, database_id, body.name))}, 201


@bp.get("/tables/<table_id>")
async def get_table(table_id: str) -> dict[str, Any]:
    return {"data": shapes.table_json(await structure.get_table_schema(await actor(), table_id))}


@bp.patch("/tables/<table_id>")
async def update_table(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(TableChanges, await json_object())
    return {"data": shapes.table_json(await structure.update_table(principal, table_id, changes(body)))}


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
    body = checked(FieldCreate, await json_object())
    f = await structure.create_field(principal, table_id, body.name, body.field_type, body.config)
    return {"data": shapes.field_json(f)}, 201


@bp.get("/fields/<field_id>")
async def get_field(field_id: str) -> dict[str, Any]:
    _, f = await structure.get_field(await actor(), field_id)
    return {"data": shapes.field_json(f)}


@bp.patch("/fields/<field_id>")
async def update_field(field_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(FieldChanges, await json_object())
    result = await structure.update_field(principal, field_id, changes(body), dry_run=body.dry_run)
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
    body = checked(EntryQuery, await json_object())
    page = await query.query_entries(
        principal,
        table_id,
        filters=body.filters,
        sort=body.sort,
        search=body.search,
        limit=body.limit,
        offset=body.offset,
        cursor=body.cursor or None,
        use_cursor="cursor" in body.model_fields_set,
        timezone_name=body.timezone,
    )
    return shapes.page_json(page)


@bp.post("/tables/<table_id>/entries")
async def create_entry(table_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = checked(EntryValues, await json_object())
    schema, rec = await entries.create_entry(principal, table_id, body.values)
    return {"data": shapes.entry_json(schema, rec)}, 201


@bp.get("/entries/<entry_id>")
async def get_entry(entry_id: str) -> dict[str, Any]:
    schema, rec = await entries.get_entry(await actor(), entry_id)
    return {"data": shapes.entry_json(schema, rec)}


@bp.patch("/entries/<entry_id>")
async def update_entry(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(EntryChanges, await json_object())
    schema, rec = await entries.update_entry(principal, entry_id, body.values)
    return {"data": shapes.entry_json(schema, rec)}


@bp.delete("/entries/<entry_id>")
async def delete_entry(entry_id: str) -> Response:
    await entries.delete_entry(await actor(), entry_id)
    return _no_content()


@bp.post("/tables/<table_id>/entries/bulk")
async def bulk(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(EntryBulk, await json_object())
    result = await entries.bulk(principal, table_id, body.operations, atomic_all=body.atomic)
    return {"data": shapes.bulk_json(result)}


@bp.post("/tables/<table_id>/aggregate")
async def aggregate(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(EntryAggregate, await json_object())
    agg = await query.aggregate(
        principal, table_id, body.function, body.field_id, filters=body.filters, search=body.search, group_by=body.group_by
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
    notes = checked(NotesReplace, body).notes
    return {"data": shapes.notes_json(entry_id, await entry_notes.replace_notes(principal, entry_id, notes))}


@bp.put("/entries/<entry_id>/notes")
async def put_notes(entry_id: str) -> dict[str, Any]:
    return await update_notes(entry_id)


@bp.post("/entries/<entry_id>/notes/append")
async def append_notes(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = checked(NotesAppend, await json_object())
    return {"data": shapes.notes_json(entry_id, await entry_notes.append_notes(principal, entry_id, body.nodes))}
