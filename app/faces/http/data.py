"""Data API: databases, tables, fields, entries, query, bulk, aggregate, notes.

Handlers validate the body with the operation's model from ``faces.arguments`` (which the
MCP server's tools use too), call one ``app.store`` function, and return the shape
``app.store.shapes`` builds. The store checks what depends on the table."""

from __future__ import annotations

from quart import Blueprint, Response, request

from ...store import entries, entry_notes, query, structure
from ...store import shapes
from ...store.shapes import (
    AggregateJSON, BulkJSON, ConversionJSON, DatabaseJSON, EntryJSON, FieldJSON, ListJSON, NotesJSON, PageJSON, TableJSON,
)
from ..arguments import (
    DatabaseChanges, DatabaseCreate, EntryAggregate, EntryBulk, EntryChanges, EntryQuery, EntryValues, FieldChanges,
    EntryList, FieldCreate, NotesAppend, NotesReplace, Page, TableChanges, TableCreate, changes, checked,
)
from .documented import documented
from .envelopes import Data
from .request_io import actor, json_object, parse_query

bp = Blueprint("data", __name__, url_prefix="/api/v1")


def _no_content() -> Response:
    return Response(status=204)


def _page_args() -> tuple[int, int]:
    page = parse_query(Page)
    return page.limit, page.offset


# ---------------------------------------------------------------- databases


@bp.get("/databases")
@documented("List databases", query=Page, scope="data.databases:read")
async def list_databases() -> ListJSON[DatabaseJSON]:
    limit, offset = _page_args()
    rows, total = await structure.list_databases(await actor(), limit=limit, offset=offset)
    return shapes.list_json([shapes.database_json(db) for db in rows], total, limit, offset)


@bp.post("/databases")
@documented("Create a database", body=DatabaseCreate, status=201, scope="data.databases:write", errors=(402,))
async def create_database() -> tuple[Data[DatabaseJSON], int]:
    principal = await actor()
    body = checked(DatabaseCreate, await json_object())
    db = await structure.create_database(principal, body.name, body.description, body.color)
    return {"data": shapes.database_json(db)}, 201


@bp.get("/databases/<database_id>")
@documented("Get a database", scope="data.databases:read")
async def get_database(database_id: str) -> Data[DatabaseJSON]:
    return {"data": shapes.database_json(await structure.get_database(await actor(), database_id))}


@bp.patch("/databases/<database_id>")
@documented("Change a database", body=DatabaseChanges, scope="data.databases:write")
async def update_database(database_id: str) -> Data[DatabaseJSON]:
    principal = await actor()
    db = await structure.update_database(principal, database_id, changes(checked(DatabaseChanges, await json_object())))
    return {"data": shapes.database_json(db)}


@bp.delete("/databases/<database_id>")
@documented("Delete a database with its tables", status=204, scope="data.databases:write")
async def delete_database(database_id: str) -> Response:
    await structure.delete_database(await actor(), database_id)
    return _no_content()


# ---------------------------------------------------------------- tables


@bp.get("/databases/<database_id>/tables")
@documented("List a database's tables", query=Page, scope="data.tables:read")
async def list_tables(database_id: str) -> ListJSON[TableJSON]:
    limit, offset = _page_args()
    rows, total = await structure.list_tables(await actor(), database_id, limit=limit, offset=offset)
    return shapes.list_json([shapes.table_json(s) for s in rows], total, limit, offset)


@bp.post("/databases/<database_id>/tables")
@documented("Create a table", body=TableCreate, status=201, scope="data.tables:write", errors=(402,))
async def create_table(database_id: str) -> tuple[Data[TableJSON], int]:
    principal = await actor()
    body = checked(TableCreate, await json_object())
    return {"data": shapes.table_json(await structure.create_table(principal, database_id, body.name))}, 201


@bp.get("/tables/<table_id>")
@documented("Get a table with its fields", scope="data.tables:read")
async def get_table(table_id: str) -> Data[TableJSON]:
    return {"data": shapes.table_json(await structure.get_table_schema(await actor(), table_id))}


@bp.patch("/tables/<table_id>")
@documented("Rename or move a table", body=TableChanges, scope="data.tables:write")
async def update_table(table_id: str) -> Data[TableJSON]:
    principal = await actor()
    body = checked(TableChanges, await json_object())
    return {"data": shapes.table_json(await structure.update_table(principal, table_id, changes(body)))}


@bp.delete("/tables/<table_id>")
@documented("Delete a table", status=204, scope="data.tables:write")
async def delete_table(table_id: str) -> Response:
    await structure.delete_table(await actor(), table_id)
    return _no_content()


# ---------------------------------------------------------------- fields


@bp.get("/tables/<table_id>/fields")
@documented("List a table's fields", query=Page, scope="data.tables:read")
async def list_fields(table_id: str) -> ListJSON[FieldJSON]:
    limit, offset = _page_args()
    rows, total = await structure.list_fields(await actor(), table_id, limit=limit, offset=offset)
    return shapes.list_json([shapes.field_json(f) for f in rows], total, limit, offset)


@bp.post("/tables/<table_id>/fields")
@documented("Add a field", body=FieldCreate, status=201, scope="data.tables:write", errors=(402,))
async def create_field(table_id: str) -> tuple[Data[FieldJSON], int]:
    principal = await actor()
    body = checked(FieldCreate, await json_object())
    f = await structure.create_field(principal, table_id, body.name, body.field_type, body.config)
    return {"data": shapes.field_json(f)}, 201


@bp.get("/fields/<field_id>")
@documented("Get a field", scope="data.tables:read")
async def get_field(field_id: str) -> Data[FieldJSON]:
    _, f = await structure.get_field(await actor(), field_id)
    return {"data": shapes.field_json(f)}


@bp.patch("/fields/<field_id>")
@documented("Change a field (dry_run previews a type change)", body=FieldChanges, scope="data.tables:write")
async def update_field(field_id: str) -> Data[FieldJSON | ConversionJSON]:
    principal = await actor()
    body = checked(FieldChanges, await json_object())
    result = await structure.update_field(principal, field_id, changes(body), dry_run=body.dry_run)
    if isinstance(result, structure.Conversion):
        return {"data": shapes.conversion_json(result)}
    return {"data": shapes.field_json(result)}


@bp.delete("/fields/<field_id>")
@documented("Delete a field", status=204, scope="data.tables:write")
async def delete_field(field_id: str) -> Response:
    await structure.delete_field(await actor(), field_id)
    return _no_content()


# ---------------------------------------------------------------- entries


@bp.get("/tables/<table_id>/entries")
@documented("List entries", query=EntryList, scope="data.tables:read")
async def list_entries(table_id: str) -> PageJSON:
    principal = await actor()
    args = parse_query(EntryList)
    page = await query.query_entries(
        principal,
        table_id,
        sort=query.parse_sort_param(args.sort),
        search=args.search,
        limit=args.limit,
        offset=args.offset,
        cursor=args.cursor,
        use_cursor="cursor" in request.args,  # even empty: the first keyset page
    )
    return shapes.page_json(page)


@bp.post("/tables/<table_id>/entries/query")
@documented("Query entries: filters, sort, search, pages", body=EntryQuery, scope="data.tables:read")
async def query_entries(table_id: str) -> PageJSON:
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
@documented("Create an entry", body=EntryValues, status=201, scope="data.tables:write", errors=(402,))
async def create_entry(table_id: str) -> tuple[Data[EntryJSON], int]:
    principal = await actor()
    body = checked(EntryValues, await json_object())
    schema, rec = await entries.create_entry(principal, table_id, body.values)
    return {"data": shapes.entry_json(schema, rec)}, 201


@bp.get("/entries/<entry_id>")
@documented("Get an entry", scope="data.tables:read")
async def get_entry(entry_id: str) -> Data[EntryJSON]:
    schema, rec = await entries.get_entry(await actor(), entry_id)
    return {"data": shapes.entry_json(schema, rec)}


@bp.patch("/entries/<entry_id>")
@documented("Change an entry's values (a merge)", body=EntryChanges, scope="data.tables:write")
async def update_entry(entry_id: str) -> Data[EntryJSON]:
    principal = await actor()
    body = checked(EntryChanges, await json_object())
    schema, rec = await entries.update_entry(principal, entry_id, body.values)
    return {"data": shapes.entry_json(schema, rec)}


@bp.delete("/entries/<entry_id>")
@documented("Delete an entry", status=204, scope="data.tables:write")
async def delete_entry(entry_id: str) -> Response:
    await entries.delete_entry(await actor(), entry_id)
    return _no_content()


@bp.post("/tables/<table_id>/entries/bulk")
@documented("Create, update and delete up to 100 entries", body=EntryBulk, scope="data.tables:write", errors=(402,))
async def bulk(table_id: str) -> Data[BulkJSON]:
    principal = await actor()
    body = checked(EntryBulk, await json_object())
    result = await entries.bulk(principal, table_id, body.operations, atomic_all=body.atomic)
    return {"data": shapes.bulk_json(result)}


@bp.post("/tables/<table_id>/aggregate")
@documented("Count, sum, average, min or max over entries", body=EntryAggregate, scope="data.tables:read")
async def aggregate(table_id: str) -> Data[AggregateJSON]:
    principal = await actor()
    body = checked(EntryAggregate, await json_object())
    agg = await query.aggregate(
        principal, table_id, body.function, body.field_id, filters=body.filters, search=body.search, group_by=body.group_by
    )
    return {"data": shapes.aggregate_json(agg)}


# ---------------------------------------------------------------- notes


@bp.get("/entries/<entry_id>/notes")
@documented("Get an entry's notes", scope="data.tables:read")
async def get_notes(entry_id: str) -> Data[NotesJSON]:
    return {"data": shapes.notes_json(entry_id, await entry_notes.get_notes(await actor(), entry_id))}


@bp.patch("/entries/<entry_id>/notes")
@documented("Replace an entry's notes (omit notes to read them)", body=NotesReplace, scope="data.tables:write")
async def update_notes(entry_id: str) -> Data[NotesJSON]:
    principal = await actor()
    body = await json_object()
    if "notes" not in body:  # the seed: omitting the key returns the notes unchanged
        return {"data": shapes.notes_json(entry_id, await entry_notes.get_notes(principal, entry_id))}
    notes = checked(NotesReplace, body).notes
    return {"data": shapes.notes_json(entry_id, await entry_notes.replace_notes(principal, entry_id, notes))}


@bp.put("/entries/<entry_id>/notes")
@documented("Replace an entry's notes", body=NotesReplace, scope="data.tables:write")
async def put_notes(entry_id: str) -> Data[NotesJSON]:
    return await update_notes(entry_id)


@bp.post("/entries/<entry_id>/notes/append")
@documented("Append blocks to an entry's notes", body=NotesAppend, scope="data.tables:write")
async def append_notes(entry_id: str) -> Data[NotesJSON]:
    principal = await actor()
    body = checked(NotesAppend, await json_object())
    return {"data": shapes.notes_json(entry_id, await entry_notes.append_notes(principal, entry_id, body.nodes))}
