"""Data API: databases, tables, fields, entries, query, bulk, aggregate, notes.

Handlers parse, call one ``app.store`` function, and shape the result as the contract shows."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from ..errors import ValidationFailed
from ..store import entries, entry_notes, query, structure
from ..store.shapes import database_json, entry_json, field_json, table_json
from .http import actor, query_int, raw_json

bp = Blueprint("data", __name__, url_prefix="/api/v1")


async def _body() -> dict[str, Any]:
    data = await raw_json()
    if not isinstance(data, dict):
        raise ValidationFailed("Request body must be a JSON object.", details={"body": ["must be a JSON object"]})
    return data


def _list(data: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"data": data, "meta": {"total": total, "limit": limit, "offset": offset}}


def _no_content() -> Response:
    return Response(status=204)


def _dry_run(body: dict[str, Any]) -> bool:
    value = body.get("dry_run", False)
    if not isinstance(value, bool):
        raise ValidationFailed(details={"dry_run": ["must be true or false"]})
    return value


# ---------------------------------------------------------------- databases


@bp.get("/databases")
async def list_databases() -> dict[str, Any]:
    limit, offset = query_int("limit", 50, minimum=1, maximum=200), query_int("offset", 0)
    rows, total = await structure.list_databases(await actor(), limit=limit, offset=offset)
    return _list([database_json(db) for db in rows], total, limit, offset)


@bp.post("/databases")
async def create_database() -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await _body()
    db = await structure.create_database(principal, body.get("name"), body.get("description"), body.get("color"))
    return {"data": database_json(db)}, 201


@bp.get("/databases/<database_id>")
async def get_database(database_id: str) -> dict[str, Any]:
    return {"data": database_json(await structure.get_database(await actor(), database_id))}


@bp.patch("/databases/<database_id>")
async def update_database(database_id: str) -> dict[str, Any]:
    principal = await actor()
    db = await structure.update_database(principal, database_id, await _body())
    return {"data": database_json(db)}


@bp.delete("/databases/<database_id>")
async def delete_database(database_id: str) -> Response:
    await structure.delete_database(await actor(), database_id)
    return _no_content()


# ---------------------------------------------------------------- tables


@bp.get("/databases/<database_id>/tables")
async def list_tables(database_id: str) -> dict[str, Any]:
    limit, offset = query_int("limit", 50, minimum=1, maximum=200), query_int("offset", 0)
    rows, total = await structure.list_tables(await actor(), database_id, limit=limit, offset=offset)
    return _list([table_json(s) for s in rows], total, limit, offset)


@bp.post("/databases/<database_id>/tables")
async def create_table(database_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await _body()
    return {"data": table_json(await structure.create_table(principal, database_id, body.get("name")))}, 201


@bp.get("/tables/<table_id>")
async def get_table(table_id: str) -> dict[str, Any]:
    return {"data": table_json(await structure.get_table_schema(await actor(), table_id))}


@bp.patch("/tables/<table_id>")
async def update_table(table_id: str) -> dict[str, Any]:
    principal = await actor()
    return {"data": table_json(await structure.update_table(principal, table_id, await _body()))}


@bp.delete("/tables/<table_id>")
async def delete_table(table_id: str) -> Response:
    await structure.delete_table(await actor(), table_id)
    return _no_content()


# ---------------------------------------------------------------- fields


@bp.get("/tables/<table_id>/fields")
async def list_fields(table_id: str) -> dict[str, Any]:
    schema = await structure.list_fields(await actor(), table_id)
    n = len(schema.fields)
    return _list([field_json(f) for f in schema.fields], n, max(n, 50), 0)


@bp.post("/tables/<table_id>/fields")
async def create_field(table_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await _body()
    f = await structure.create_field(
        principal, table_id, body.get("name"), body.get("type", body.get("field_type")), body.get("config")
    )
    return {"data": field_json(f)}, 201


@bp.get("/fields/<field_id>")
async def get_field(field_id: str) -> dict[str, Any]:
    _, f = await structure.get_field(await actor(), field_id)
    return {"data": field_json(f)}


@bp.patch("/fields/<field_id>")
async def update_field(field_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    result = await structure.update_field(principal, field_id, body, dry_run=_dry_run(body))
    if isinstance(result, structure.Conversion):
        return {
            "data": {
                "dry_run": True,
                "field": field_json(result.field),
                "total": result.total,
                "convertible": result.converted,
                "unconvertible": result.failed,
                "examples": result.examples,
            }
        }
    return {"data": field_json(result)}


@bp.delete("/fields/<field_id>")
async def delete_field(field_id: str) -> Response:
    await structure.delete_field(await actor(), field_id)
    return _no_content()


# ---------------------------------------------------------------- entries


def _page(page: query.Page) -> dict[str, Any]:
    meta: dict[str, Any] = {"limit": page.limit}
    if page.offset is not None:
        meta.update(total=page.total, offset=page.offset)
    else:
        meta.update(next_cursor=page.next_cursor, has_more=page.has_more)
        if page.total is not None:
            meta["total"] = page.total
    return {"data": [entry_json(page.schema, e) for e in page.entries], "meta": meta}


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
    return _page(page)


@bp.post("/tables/<table_id>/entries/query")
async def query_entries(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ValidationFailed(details={"cursor": ["must be a string (meta.next_cursor) or null"]})
    page = await query.query_entries(
        principal,
        table_id,
        filters=body.get("filters"),
        sort=body.get("sort"),
        search=body.get("search"),
        limit=body.get("limit"),
        offset=body.get("offset"),
        cursor=cursor or None,
        use_cursor="cursor" in body,
    )
    return _page(page)


@bp.post("/tables/<table_id>/entries")
async def create_entry(table_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    body = await _body()
    schema, rec = await entries.create_entry(principal, table_id, body.get("values"))
    return {"data": entry_json(schema, rec)}, 201


@bp.get("/entries/<entry_id>")
async def get_entry(entry_id: str) -> dict[str, Any]:
    schema, rec = await entries.get_entry(await actor(), entry_id)
    return {"data": entry_json(schema, rec)}


@bp.patch("/entries/<entry_id>")
async def update_entry(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    if "values" not in body:
        raise ValidationFailed(details={"values": ["required"]})
    schema, rec = await entries.update_entry(principal, entry_id, body["values"])
    return {"data": entry_json(schema, rec)}


@bp.delete("/entries/<entry_id>")
async def delete_entry(entry_id: str) -> Response:
    await entries.delete_entry(await actor(), entry_id)
    return _no_content()


@bp.post("/tables/<table_id>/entries/bulk")
async def bulk(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    atomic_all = body.get("atomic", False)
    if not isinstance(atomic_all, bool):
        raise ValidationFailed(details={"atomic": ["must be true or false"]})
    result = await entries.bulk(principal, table_id, body.get("operations"), atomic_all=atomic_all)
    items = []
    for item in result.results:
        item = dict(item)
        rec = item.pop("entry", None)
        if rec is not None:
            item["entry"] = entry_json(result.schema, rec)
        items.append(item)
    return {"data": {"total": result.total, "succeeded": result.succeeded, "failed": result.failed, "results": items}}


@bp.post("/tables/<table_id>/aggregate")
async def aggregate(table_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    agg = await query.aggregate(
        principal,
        table_id,
        body.get("function"),
        body.get("field", body.get("field_id")),
        filters=body.get("filters"),
        search=body.get("search"),
        group_by=body.get("group_by"),
    )
    out: dict[str, Any] = {"function": agg.function}
    if agg.field is not None:
        out["field"] = agg.field.id
    if agg.group_by is None:
        out["result"] = agg.result
    else:
        out.update(group_by=agg.group_by.id, groups=agg.groups, truncated=agg.truncated)
    return {"data": out}


# ---------------------------------------------------------------- notes


def _notes(entry_id: str, doc: Any) -> dict[str, Any]:
    return {"data": {"entry_id": entry_id, "notes": doc, "has_notes": doc is not None}}


@bp.get("/entries/<entry_id>/notes")
async def get_notes(entry_id: str) -> dict[str, Any]:
    return _notes(entry_id, await entry_notes.get_notes(await actor(), entry_id))


@bp.patch("/entries/<entry_id>/notes")
async def update_notes(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    if "notes" not in body:  # the seed: omitting the key returns the notes unchanged
        return _notes(entry_id, await entry_notes.get_notes(principal, entry_id))
    return _notes(entry_id, await entry_notes.replace_notes(principal, entry_id, body["notes"]))


@bp.put("/entries/<entry_id>/notes")
async def put_notes(entry_id: str) -> dict[str, Any]:
    return await update_notes(entry_id)


@bp.post("/entries/<entry_id>/notes/append")
async def append_notes(entry_id: str) -> dict[str, Any]:
    principal = await actor()
    body = await _body()
    nodes = body.get("content", body.get("nodes"))
    return _notes(entry_id, await entry_notes.append_notes(principal, entry_id, nodes))
