"""The seed's Data tools: databases, tables, fields, entries, notes. Each calls the store
function its REST route calls and returns the ``data`` its REST route returns."""

from __future__ import annotations

from typing import Any

from ...kernel.auth import Principal
from ...store import entries, entry_notes, query, shapes, structure
from .. import arguments as a
from .tools import ids_only, tool, with_ids


def _deleted(kind: str, object_id: str) -> dict[str, Any]:
    return {"deleted": True, kind: object_id}


# ---------------------------------------------------------------- databases


@tool("database_list", "List the organization's databases: display ids, names, descriptions, creation dates.",
      a.Page, read_only=True)
async def database_list(p: Principal, args: a.Page) -> Any:
    rows, total = await structure.list_databases(p, limit=args.limit, offset=args.offset)
    return shapes.list_json([shapes.database_json(db) for db in rows], total, args.limit, args.offset)


@tool("database_get", "A database's details, including its tables.", ids_only("DatabaseGet", "database_id"),
      read_only=True)
async def database_get(p: Principal, args: Any) -> Any:
    db, tables = await structure.get_database_with_tables(p, args.database_id)
    out: dict[str, Any] = dict(shapes.database_json(db))
    if tables is not None:
        out["tables"] = [shapes.table_json(t) for t in tables]
    return out


@tool("database_create", "Create a database.", a.DatabaseCreate)
async def database_create(p: Principal, args: a.DatabaseCreate) -> Any:
    return shapes.database_json(await structure.create_database(p, args.name, args.description, args.color))


@tool("database_update", "Change a database's name, description or color.",
      with_ids("DatabaseUpdate", a.DatabaseChanges, "database_id"))
async def database_update(p: Principal, args: Any) -> Any:
    return shapes.database_json(await structure.update_database(p, args.database_id, a.changes(args, "database_id")))


@tool("database_delete", "Soft-delete a database with all its tables, fields and entries.",
      ids_only("DatabaseDelete", "database_id"))
async def database_delete(p: Principal, args: Any) -> Any:
    await structure.delete_database(p, args.database_id)
    return _deleted("database_id", args.database_id)


# ---------------------------------------------------------------- tables


@tool("table_list", "List a database's tables with entry counts and field summaries.",
      with_ids("TableList", a.Page, "database_id"), read_only=True)
async def table_list(p: Principal, args: Any) -> Any:
    rows, total = await structure.list_tables(p, args.database_id, limit=args.limit, offset=args.offset)
    return shapes.list_json([shapes.table_json(t) for t in rows], total, args.limit, args.offset)


@tool("table_get", "A table's details with all its fields, their types and configurations.",
      ids_only("TableGet", "table_id"), read_only=True)
async def table_get(p: Principal, args: Any) -> Any:
    return shapes.table_json(await structure.get_table_schema(p, args.table_id))


@tool("table_create", "Create a table in a database; a Name text field is added automatically.",
      with_ids("TableCreateTool", a.TableCreate, "database_id"))
async def table_create(p: Principal, args: Any) -> Any:
    return shapes.table_json(await structure.create_table(p, args.database_id, args.name))


@tool("table_update", "Rename a table or change its position.", with_ids("TableUpdate", a.TableChanges, "table_id"))
async def table_update(p: Principal, args: Any) -> Any:
    return shapes.table_json(await structure.update_table(p, args.table_id, a.changes(args, "table_id")))


@tool("table_delete", "Soft-delete a table with its fields and entries.", ids_only("TableDelete", "table_id"))
async def table_delete(p: Principal, args: Any) -> Any:
    await structure.delete_table(p, args.table_id)
    return _deleted("table_id", args.table_id)


# ---------------------------------------------------------------- fields


@tool("field_list", "List a table's fields with types, configurations and display ids.",
      with_ids("FieldList", a.Page, "table_id"), read_only=True)
async def field_list(p: Principal, args: Any) -> Any:
    rows, total = await structure.list_fields(p, args.table_id, limit=args.limit, offset=args.offset)
    return shapes.list_json([shapes.field_json(f) for f in rows], total, args.limit, args.offset)


@tool("field_get", "A field's details, including its config (select options, formula ...).",
      ids_only("FieldGet", "field_id"), read_only=True)
async def field_get(p: Principal, args: Any) -> Any:
    _, f = await structure.get_field(p, args.field_id)
    return shapes.field_json(f)


@tool("field_create", "Add a field to a table. For select and multi_select, give the options in config.",
      with_ids("FieldCreateTool", a.FieldCreate, "table_id"))
async def field_create(p: Principal, args: Any) -> Any:
    return shapes.field_json(await structure.create_field(p, args.table_id, args.name, args.field_type, args.config))


@tool("field_update", "Change a field's name, type or config (config is merged, not replaced).",
      with_ids("FieldUpdate", a.FieldChanges, "field_id"))
async def field_update(p: Principal, args: Any) -> Any:
    result = await structure.update_field(p, args.field_id, a.changes(args, "field_id"), dry_run=args.dry_run)
    if isinstance(result, structure.Conversion):
        return shapes.conversion_json(result)
    return shapes.field_json(result)


@tool("field_delete", "Soft-delete a field; entry values for it are kept but hidden.",
      ids_only("FieldDelete", "field_id"))
async def field_delete(p: Principal, args: Any) -> Any:
    await structure.delete_field(p, args.field_id)
    return _deleted("field_id", args.field_id)


# ---------------------------------------------------------------- entries


@tool("entry_list", "List a table's entries, 50 a page by default (at most 200). To filter or sort, use entry_query.",
      with_ids("EntryList", a.Page, "table_id"), read_only=True)
async def entry_list(p: Principal, args: Any) -> Any:
    return shapes.page_json(await query.query_entries(p, args.table_id, limit=args.limit, offset=args.offset))


@tool("entry_get", "One entry by its display id.", ids_only("EntryGet", "entry_id"), read_only=True)
async def entry_get(p: Principal, args: Any) -> Any:
    return shapes.entry_json(*await entries.get_entry(p, args.entry_id))


@tool("entry_create", "Create an entry from a map of field names or display ids to values.",
      with_ids("EntryCreate", a.EntryValues, "table_id"))
async def entry_create(p: Principal, args: Any) -> Any:
    return shapes.entry_json(*await entries.create_entry(p, args.table_id, args.values))


@tool("entry_update", "Change an entry's values: only the fields named change (a merge).",
      with_ids("EntryUpdate", a.EntryChanges, "entry_id"))
async def entry_update(p: Principal, args: Any) -> Any:
    return shapes.entry_json(*await entries.update_entry(p, args.entry_id, args.values))


@tool("entry_delete", "Soft-delete an entry (its files are released).", ids_only("EntryDelete", "entry_id"))
async def entry_delete(p: Principal, args: Any) -> Any:
    await entries.delete_entry(p, args.entry_id)
    return _deleted("entry_id", args.entry_id)


@tool("entry_query", "Query entries with filters (AND-combined), sorting and full-text search. Fields accept display "
      "ids or names.", with_ids("EntryQueryTool", a.EntryQuery, "table_id"), read_only=True)
async def entry_query(p: Principal, args: Any) -> Any:
    page = await query.query_entries(
        p, args.table_id, filters=args.filters, sort=args.sort, search=args.search, limit=args.limit,
        offset=args.offset, cursor=args.cursor or None, use_cursor="cursor" in args.model_fields_set,
        timezone_name=args.timezone,
    )
    return shapes.page_json(page)


@tool("entry_bulk", "Create, update or delete up to 100 entries in one call; returns success and failure counts.",
      with_ids("EntryBulkTool", a.EntryBulk, "table_id"))
async def entry_bulk(p: Principal, args: Any) -> Any:
    return shapes.bulk_json(await entries.bulk(p, args.table_id, args.operations, atomic_all=args.atomic))


@tool("entry_aggregate", "count, distinct_count, sum, average, min or max over a table's entries (count needs no "
      "field).", with_ids("EntryAggregateTool", a.EntryAggregate, "table_id"), read_only=True)
async def entry_aggregate(p: Principal, args: Any) -> Any:
    agg = await query.aggregate(
        p, args.table_id, args.function, args.field_id, filters=args.filters, search=args.search, group_by=args.group_by
    )
    return shapes.aggregate_json(agg)


# ---------------------------------------------------------------- notes


@tool("entry_notes_get", "An entry's notes as TipTap JSON (null, with has_notes false, when there are none).",
      ids_only("NotesGet", "entry_id"), read_only=True)
async def entry_notes_get(p: Principal, args: Any) -> Any:
    return shapes.notes_json(args.entry_id, await entry_notes.get_notes(p, args.entry_id))


@tool("entry_notes_update", "Replace an entry's notes with a TipTap JSON document; null clears them.",
      with_ids("NotesUpdate", a.NotesReplace, "entry_id"))
async def entry_notes_update(p: Principal, args: Any) -> Any:
    return shapes.notes_json(args.entry_id, await entry_notes.replace_notes(p, args.entry_id, args.notes))


@tool("entry_notes_append", "Append TipTap block nodes to the end of an entry's notes (created when there are none).",
      with_ids("NotesAppendTool", a.NotesAppend, "entry_id"))
async def entry_notes_append(p: Principal, args: Any) -> Any:
    return shapes.notes_json(args.entry_id, await entry_notes.append_notes(p, args.entry_id, args.nodes))
