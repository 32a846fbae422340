"""Every route of the Data API over HTTP: the contract's shapes, status codes, scopes and
error codes (lerty-api.txt: Databases, Tables, Fields, Entries, Entry Notes, Errors)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.services import accounts

from .conftest import Api

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def ident(prefix: str) -> Any:
    return re.compile(rf"^{prefix}_[A-Za-z0-9_-]+$")


def assert_list(body: dict[str, Any], total: int, limit: int = 50, offset: int = 0) -> list[Any]:
    assert set(body) == {"data", "meta"}
    assert body["meta"] == {"total": total, "limit": limit, "offset": offset}
    return body["data"]  # type: ignore[no-any-return]


def assert_error(body: dict[str, Any], code: str) -> dict[str, Any]:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def key(client: Any, org: Any, scopes: list[str]) -> Api:
    response = await client.post("/api/v1/api-keys", json={"name": "k", "scopes": scopes}, headers=org.headers)
    assert response.status_code == 201
    return Api(client, {"Authorization": f"Bearer {(await response.get_json())['api_key']['key']}"})


# ---------------------------------------------------------------- databases


async def test_databases(api: Api, client: Any) -> None:
    assert_list(await api.ok("get", "/databases"), 0)
    created = await api.ok("post", "/databases", {"name": "My Database", "description": "Project tracker", "color": "#3B82F6"}, 201)
    assert set(created) == {"data"}
    db = created["data"]
    assert ident("db").match(db["id"]) and ISO.match(db["created_at"]) and ISO.match(db["updated_at"])
    assert (db["name"], db["description"], db["color"]) == ("My Database", "Project tracker", "#3B82F6")
    await api.ok("post", "/databases", {"name": "Second"}, 201)
    listed = assert_list(await api.ok("get", "/databases"), 2)
    assert [d["name"] for d in listed] == ["My Database", "Second"]
    assert assert_list(await api.ok("get", "/databases?limit=1&offset=1"), 2, 1, 1)[0]["name"] == "Second"
    assert (await api.ok("get", f"/databases/{db['id']}"))["data"] == db
    renamed = (await api.ok("patch", f"/databases/{db['id']}", {"name": "Renamed Database"}))["data"]
    assert renamed["name"] == "Renamed Database" and renamed["description"] == "Project tracker"
    _, err = await api.call("patch", f"/databases/{db['id']}", {"color": "blue"}, 422)
    assert "color" in assert_error(err, "validation_failed")["details"]
    _, err = await api.call("post", "/databases", {"description": "no name"}, 422)
    assert_error(err, "validation_failed")
    response = await client.delete(f"/api/v1/databases/{db['id']}", headers=api.headers)
    assert response.status_code == 204 and await response.get_data() == b""
    _, err = await api.call("get", f"/databases/{db['id']}", None, 404)
    assert_error(err, "not_found")
    await api.call("delete", f"/databases/{db['id']}", None, 404)
    assert_list(await api.ok("get", "/databases"), 1)


# ---------------------------------------------------------------- tables


async def test_tables(api: Api) -> None:
    db = (await api.ok("post", "/databases", {"name": "D"}, 201))["data"]
    assert_list(await api.ok("get", f"/databases/{db['id']}/tables"), 0)
    table = (await api.ok("post", f"/databases/{db['id']}/tables", {"name": "Tasks"}, 201))["data"]
    assert ident("tb").match(table["id"]) and ISO.match(table["created_at"]) and table["name"] == "Tasks"
    assert [f["type"] for f in table["fields"]] == ["text", "select", "date", "checkbox"]
    for f in table["fields"]:
        assert ident("fd").match(f["id"]) and isinstance(f["config"], dict)
    status = table["fields"][1]
    assert all(ident("op").match(o["id"]) and {"id", "label", "color"} <= set(o) for o in status["config"]["options"])
    # the seed: a new table has 3 empty entries
    assert_list(await api.ok("get", f"/tables/{table['id']}/entries"), 3)
    await api.ok("post", f"/databases/{db['id']}/tables", {"name": "Other"}, 201)
    listed = assert_list(await api.ok("get", f"/databases/{db['id']}/tables"), 2)
    assert [t["name"] for t in listed] == ["Tasks", "Other"] and listed[0]["fields"] == table["fields"]
    assert assert_list(await api.ok("get", f"/databases/{db['id']}/tables?limit=1&offset=1"), 2, 1, 1)[0]["name"] == "Other"
    assert (await api.ok("get", f"/tables/{table['id']}"))["data"]["fields"] == table["fields"]
    updated = (await api.ok("patch", f"/tables/{table['id']}", {"name": "Todo", "position": 5}))["data"]
    assert (updated["name"], updated["position"]) == ("Todo", 5)
    _, err = await api.call("patch", f"/tables/{table['id']}", {"name": ""}, 422)
    assert_error(err, "validation_failed")
    _, err = await api.call("post", f"/databases/{db['id']}/tables", {"name": None}, 422)
    assert_error(err, "validation_failed")
    entry = (await api.ok("get", f"/tables/{table['id']}/entries"))["data"][0]
    await api.call("delete", f"/tables/{table['id']}", None, 204)
    for path in (f"/tables/{table['id']}", f"/tables/{table['id']}/entries", f"/tables/{table['id']}/fields",
                 f"/entries/{entry['id']}", f"/fields/{table['fields'][0]['id']}"):
        _, err = await api.call("get", path, None, 404)
        assert_error(err, "not_found")
    assert_list(await api.ok("get", f"/databases/{db['id']}/tables"), 1)
    # deleting the database takes its tables with it
    other = listed[1]
    await api.call("delete", f"/databases/{db['id']}", None, 204)
    await api.call("get", f"/tables/{other['id']}", None, 404)
    await api.call("get", f"/databases/{db['id']}/tables", None, 404)


# ---------------------------------------------------------------- fields


async def test_fields(api: Api) -> None:
    table = await api.table()
    tid = table["id"]
    listed = assert_list(await api.ok("get", f"/tables/{tid}/fields"), 4)
    assert listed == table["fields"]
    created = await api.ok("post", f"/tables/{tid}/fields", {"name": "Priority", "type": "select", "config": {
        "options": [{"label": "High", "color": "red"}, {"label": "Low", "color": "gray"}]}}, 201)
    f = created["data"]
    assert set(f) == {"id", "name", "type", "position", "config", "created_at"}
    assert ident("fd").match(f["id"]) and f["type"] == "select" and f["position"] == 4 and ISO.match(f["created_at"])
    assert [(o["label"], o["color"]) for o in f["config"]["options"]] == [("High", "red"), ("Low", "gray")]
    assert all(ident("op").match(o["id"]) for o in f["config"]["options"])
    assert (await api.ok("get", f"/fields/{f['id']}"))["data"] == f
    renamed = (await api.ok("patch", f"/fields/{f['id']}", {"name": "Urgency"}))["data"]
    assert renamed["name"] == "Urgency" and renamed["config"] == f["config"]
    _, err = await api.call("post", f"/tables/{tid}/fields", {"name": "urgency", "type": "text"}, 422)
    assert assert_error(err, "validation_failed")["details"] == {"name": ["a field with this name already exists in this table"]}
    _, err = await api.call("post", f"/tables/{tid}/fields", {"name": "X", "type": "spreadsheet"}, 422)
    assert "type" in assert_error(err, "validation_failed")["details"]
    await api.call("delete", f"/fields/{f['id']}", None, 204)
    _, err = await api.call("get", f"/fields/{f['id']}", None, 404)
    assert_error(err, "not_found")
    assert_list(await api.ok("get", f"/tables/{tid}/fields"), 4)


async def test_field_type_change_with_dry_run(api: Api) -> None:
    table = await api.table(fields=[{"name": "Amount", "type": "text"}])
    tid = table["id"]
    amount = table["fields"][-1]
    await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [
        {"action": "create", "values": {"Amount": v}} for v in ("12", "3.5", "lots")]})
    preview = (await api.ok("patch", f"/fields/{amount['id']}", {"type": "number", "dry_run": True}))["data"]
    assert preview["dry_run"] is True and preview["field"]["type"] == "text"
    assert (preview["total"], preview["convertible"], preview["unconvertible"], preview["examples"]) == (3, 2, 1, ["lots"])
    # nothing changed
    assert (await api.ok("get", f"/fields/{amount['id']}"))["data"]["type"] == "text"
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Amount", "op": "is", "value": "lots"}]})
    assert q["meta"]["total"] == 1
    _, err = await api.call("patch", f"/fields/{amount['id']}", {"type": "number", "dry_run": "yes"}, 422)
    assert "dry_run" in assert_error(err, "validation_failed")["details"]
    changed = (await api.ok("patch", f"/fields/{amount['id']}", {"type": "number"}))["data"]
    assert changed["type"] == "number"
    total = await api.ok("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Amount"})
    assert total["data"]["result"] == 15.5


async def test_fields_meta_is_honest(api: Api) -> None:
    table = await api.table(fields=[{"name": f"F{i}", "type": "number"} for i in range(6)])
    tid = table["id"]
    every = assert_list(await api.ok("get", f"/tables/{tid}/fields"), 10)
    assert [f["name"] for f in every] == ["Name", "Status", "Date", "Done"] + [f"F{i}" for i in range(6)]
    page = assert_list(await api.ok("get", f"/tables/{tid}/fields?limit=3&offset=2"), 10, 3, 2)
    assert [f["name"] for f in page] == ["Date", "Done", "F0"]
    assert assert_list(await api.ok("get", f"/tables/{tid}/fields?offset=9"), 10, 50, 9)[0]["name"] == "F5"
    assert assert_list(await api.ok("get", f"/tables/{tid}/fields?offset=10"), 10, 50, 10) == []
    await api.call("get", f"/tables/{tid}/fields?limit=0", None, 422)
    await api.call("get", f"/tables/{tid}/fields?limit=201", None, 422)


# ---------------------------------------------------------------- entries


async def test_entries_crud(api: Api, client: Any) -> None:
    table = await api.table()
    tid = table["id"]
    name, status = table["fields"][0], table["fields"][1]
    todo = next(o for o in status["config"]["options"] if o["label"] == "To do")
    done = next(o for o in status["config"]["options"] if o["label"] == "Done")
    created = await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "Build login page", "Status": "To do"}}, 201)
    entry = created["data"]
    assert set(entry) == {"id", "table_id", "values", "created_at", "updated_at"}
    assert ident("en").match(entry["id"]) and entry["table_id"] == tid and ISO.match(entry["created_at"])
    assert entry["values"] == {name["id"]: "Build login page", status["id"]: todo["id"]}
    by_ids = (await api.ok("post", f"/tables/{tid}/entries", {"values": {name["id"]: "x", status["id"]: done["id"]}}, 201))["data"]
    assert by_ids["values"] == {name["id"]: "x", status["id"]: done["id"]}
    empty = (await api.ok("post", f"/tables/{tid}/entries", {}, 201))["data"]
    assert empty["values"] == {}
    assert (await api.ok("get", f"/entries/{entry['id']}"))["data"] == entry
    merged = (await api.ok("patch", f"/entries/{entry['id']}", {"values": {"Status": "Done"}}))["data"]
    assert merged["values"] == {name["id"]: "Build login page", status["id"]: done["id"]}
    _, err = await api.call("patch", f"/entries/{entry['id']}", {}, 422)
    assert "values" in assert_error(err, "validation_failed")["details"]
    _, err = await api.call("patch", f"/entries/{entry['id']}", {"values": {"Nonexistent": 1}}, 422)
    assert assert_error(err, "field_not_found")["message"].startswith("Field 'Nonexistent' not found in this table.")
    _, err = await api.call("post", f"/tables/{tid}/entries", {"values": {"Status": "Nope"}}, 422)
    assert "Status" in assert_error(err, "validation_failed")["details"]
    response = await client.delete(f"/api/v1/entries/{entry['id']}", headers=api.headers)
    assert response.status_code == 204 and await response.get_data() == b""
    _, err = await api.call("get", f"/entries/{entry['id']}", None, 404)
    assert_error(err, "not_found")
    await api.call("patch", f"/entries/{entry['id']}", {"values": {"Name": "x"}}, 404)
    await api.call("delete", f"/entries/{entry['id']}", None, 404)
    _, err = await api.call("post", "/tables/tb_missing/entries", {"values": {}}, 404)
    assert_error(err, "not_found")


async def test_list_and_query(api: Api) -> None:
    table = await api.table(fields=[{"name": "Amount", "type": "number"}])
    tid = table["id"]
    amount = table["fields"][-1]["id"]
    for e in (await api.ok("get", f"/tables/{tid}/entries"))["data"]:
        await api.call("delete", f"/entries/{e['id']}", None, 204)
    rows = [("alpha report", "To do", 5), ("beta notes", "Done", 1), ("gamma report", "Done", 9), ("delta", None, 3)]
    await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [
        {"action": "create", "values": {"Name": n, "Status": s, "Amount": a}} for n, s, a in rows]})

    def names(body: Any) -> list[Any]:
        return [e["values"].get(table["fields"][0]["id"]) for e in body["data"]]

    listed = await api.ok("get", f"/tables/{tid}/entries?sort=Amount:desc&limit=2&offset=1")
    assert listed["meta"] == {"total": 4, "limit": 2, "offset": 1} and names(listed) == ["alpha report", "delta"]
    assert names(await api.ok("get", f"/tables/{tid}/entries?search=report&sort=Name:asc")) == ["alpha report", "gamma report"]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {
        "filters": [{"field": "Status", "op": "is", "value": "Done"}], "sort": [{"field": "Name", "direction": "asc"}], "limit": 50})
    assert q["meta"] == {"total": 2, "limit": 50, "offset": 0} and names(q) == ["beta notes", "gamma report"]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {
        "filters": {"or": [{"field": "Amount", "op": "gt", "value": 8}, {"field": "Status", "op": "is_empty"}]},
        "sort": [{"field": amount, "direction": "asc"}]})
    assert names(q) == ["delta", "gamma report"]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"search": "report", "sort": [{"field": "Amount", "direction": "desc"}], "offset": 1})
    assert q["meta"] == {"total": 2, "limit": 50, "offset": 1} and names(q) == ["alpha report"]
    # keyset pages
    seen = []
    body: dict[str, Any] = {"sort": [{"field": "Amount", "direction": "asc"}], "limit": 3, "cursor": None}
    while True:
        page = await api.ok("post", f"/tables/{tid}/entries/query", body)
        assert set(page["meta"]) == {"limit", "next_cursor", "has_more"} and page["meta"]["limit"] == 3
        seen += names(page)
        if not page["meta"]["has_more"]:
            assert page["meta"]["next_cursor"] is None
            break
        body["cursor"] = page["meta"]["next_cursor"]
    assert seen == ["beta notes", "delta", "alpha report", "gamma report"]
    cursor_page = await api.ok("get", f"/tables/{tid}/entries?cursor=&limit=2")
    assert cursor_page["meta"]["has_more"] is True and len(cursor_page["data"]) == 2
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"cursor": body["cursor"], "sort": [{"field": "Name", "direction": "asc"}]}, 422)
    assert "cursor" in assert_error(err, "validation_failed")["details"]
    # the Data API's error codes
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Nonexistent", "op": "is", "value": 1}]}, 422)
    assert assert_error(err, "field_not_found")["details"]["field"] == "Nonexistent"
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Amount", "op": "contains", "value": "x"}]}, 422)
    assert "gt" in assert_error(err, "invalid_filter")["details"]["allowed"]
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Amount", "op": "explode", "value": 1}]}, 422)
    assert_error(err, "invalid_filter")
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"sort": [{"field": "Nope", "direction": "asc"}]}, 422)
    assert_error(err, "invalid_sort")
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"sort": [{"field": "Name", "direction": "up"}]}, 422)
    assert_error(err, "invalid_sort")
    _, err = await api.call("get", f"/tables/{tid}/entries?sort=Nope:asc", None, 422)
    assert_error(err, "invalid_sort")
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"limit": 201}, 422)
    assert_error(err, "validation_failed")


async def test_bulk(api: Api) -> None:
    table = await api.table()
    tid = table["id"]
    first = (await api.ok("get", f"/tables/{tid}/entries"))["data"]
    body = await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [
        {"action": "create", "values": {"Name": "New task"}},
        {"action": "update", "id": first[0]["id"], "values": {"Status": "Done"}},
        {"action": "delete", "id": first[1]["id"]},
        {"action": "update", "id": "en_missing", "values": {"Name": "x"}},
    ]})
    assert set(body) == {"data"} and set(body["data"]) == {"total", "succeeded", "failed", "results"}
    data = body["data"]
    assert (data["total"], data["succeeded"], data["failed"]) == (4, 3, 1)
    created = data["results"][0]
    assert created["status"] == "ok" and ident("en").match(created["id"]) and created["entry"]["id"] == created["id"]
    assert data["results"][2] == {"index": 2, "action": "delete", "status": "ok", "id": first[1]["id"]}
    assert data["results"][3]["error"]["code"] == "not_found"
    # atomic: all or nothing
    _, err = await api.call("post", f"/tables/{tid}/entries/bulk", {"atomic": True, "operations": [
        {"action": "delete", "id": first[2]["id"]}, {"action": "create", "values": {"Nope": 1}}]}, 422)
    results = assert_error(err, "validation_failed")["details"]["results"]
    assert [r["status"] for r in results] == ["rolled_back", "error"] and results[1]["error"]["code"] == "field_not_found"
    await api.ok("get", f"/entries/{first[2]['id']}")
    ok = await api.ok("post", f"/tables/{tid}/entries/bulk", {"atomic": True, "operations": [{"action": "delete", "id": first[2]["id"]}]})
    assert ok["data"]["succeeded"] == 1
    await api.call("get", f"/entries/{first[2]['id']}", None, 404)
    for bad in ({"operations": []}, {"operations": "all"}, {"operations": [{"action": "create"}] * 101},
                {"operations": [{"action": "create"}], "atomic": "yes"}):
        _, err = await api.call("post", f"/tables/{tid}/entries/bulk", bad, 422)
        assert_error(err, "validation_failed")


async def test_aggregate(api: Api) -> None:
    table = await api.table(fields=[{"name": "Amount", "type": "number"}])
    tid = table["id"]
    amount, status = table["fields"][-1], table["fields"][1]
    await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [
        {"action": "create", "values": {"Status": s, "Amount": a}} for s, a in (("To do", 10), ("Done", 2), ("Done", 3))]})
    assert await api.ok("post", f"/tables/{tid}/aggregate", {"function": "count"}) == {"data": {"function": "count", "result": 6}}
    assert await api.ok("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Amount"}) == {
        "data": {"function": "sum", "field": amount["id"], "result": 15}}
    filtered = await api.ok("post", f"/tables/{tid}/aggregate", {
        "function": "max", "field": "Amount", "filters": [{"field": "Status", "op": "is", "value": "Done"}]})
    assert filtered["data"]["result"] == 3
    grouped = (await api.ok("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Amount", "group_by": "Status"}))["data"]
    assert set(grouped) == {"function", "field", "group_by", "groups", "truncated"}
    assert grouped["group_by"] == status["id"] and grouped["truncated"] is False
    assert {g["label"]: g["result"] for g in grouped["groups"]} == {None: 0, "To do": 10, "Done": 5}
    _, err = await api.call("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Nonexistent"}, 422)
    assert_error(err, "field_not_found")
    _, err = await api.call("post", f"/tables/{tid}/aggregate", {"function": "median"}, 422)
    assert_error(err, "validation_failed")
    _, err = await api.call("post", f"/tables/{tid}/aggregate", {"function": "count", "filters": [{"field": "Amount", "op": "has_any_of", "value": [1]}]}, 422)
    assert_error(err, "invalid_filter")


# ---------------------------------------------------------------- notes

DOC = {"type": "doc", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Replaced notes content."}]}]}
PARA = {"type": "paragraph", "content": [{"type": "text", "text": "Appended a new paragraph."}]}


async def test_notes(api: Api) -> None:
    table = await api.table()
    eid = (await api.ok("get", f"/tables/{table['id']}/entries"))["data"][0]["id"]
    assert await api.ok("get", f"/entries/{eid}/notes") == {"data": {"entry_id": eid, "notes": None, "has_notes": False}}
    assert await api.ok("patch", f"/entries/{eid}/notes", {"notes": DOC}) == {"data": {"entry_id": eid, "notes": DOC, "has_notes": True}}
    assert (await api.ok("get", f"/entries/{eid}/notes"))["data"]["notes"] == DOC
    assert (await api.ok("patch", f"/entries/{eid}/notes", {}))["data"]["notes"] == DOC  # no key: unchanged
    appended = (await api.ok("post", f"/entries/{eid}/notes/append", {"content": [PARA]}))["data"]
    assert appended["notes"]["content"] == DOC["content"] + [PARA] and appended["has_notes"] is True
    assert (await api.ok("patch", f"/entries/{eid}/notes", {"notes": None}))["data"] == {"entry_id": eid, "notes": None, "has_notes": False}
    assert (await api.ok("get", f"/entries/{eid}/notes"))["data"]["has_notes"] is False
    # append to no notes starts a document
    fresh = (await api.ok("post", f"/entries/{eid}/notes/append", {"content": [PARA]}))["data"]["notes"]
    assert fresh == {"type": "doc", "content": [PARA]}
    put = (await api.ok("put", f"/entries/{eid}/notes", {"notes": DOC}))["data"]
    assert put["notes"] == DOC
    _, err = await api.call("patch", f"/entries/{eid}/notes", {"notes": {"type": "paragraph"}}, 422)
    assert_error(err, "validation_failed")
    _, err = await api.call("post", f"/entries/{eid}/notes/append", {"content": []}, 422)
    assert_error(err, "validation_failed")
    _, err = await api.call("get", "/entries/en_missing/notes", None, 404)
    assert_error(err, "not_found")


# ---------------------------------------------------------------- scopes and authentication


async def _fixture_ids(api: Api) -> dict[str, str]:
    table = await api.table()
    entry = (await api.ok("get", f"/tables/{table['id']}/entries"))["data"][0]
    return {"db": table["database_id"], "tb": table["id"], "fd": table["fields"][0]["id"], "en": entry["id"]}


WRITES = [
    ("post", "/databases", {"name": "x"}, "data.databases:write"),
    ("patch", "/databases/{db}", {"name": "x"}, "data.databases:write"),
    ("delete", "/databases/{db}", None, "data.databases:write"),
    ("post", "/databases/{db}/tables", {"name": "x"}, "data.tables:write"),
    ("patch", "/tables/{tb}", {"name": "x"}, "data.tables:write"),
    ("delete", "/tables/{tb}", None, "data.tables:write"),
    ("post", "/tables/{tb}/fields", {"name": "x", "type": "text"}, "data.tables:write"),
    ("patch", "/fields/{fd}", {"name": "x"}, "data.tables:write"),
    ("patch", "/fields/{fd}", {"type": "number", "dry_run": True}, "data.tables:write"),
    ("delete", "/fields/{fd}", None, "data.tables:write"),
    ("post", "/tables/{tb}/entries", {"values": {}}, "data.tables:write"),
    ("patch", "/entries/{en}", {"values": {"Name": "x"}}, "data.tables:write"),
    ("delete", "/entries/{en}", None, "data.tables:write"),
    ("post", "/tables/{tb}/entries/bulk", {"operations": [{"action": "create"}]}, "data.tables:write"),
    ("patch", "/entries/{en}/notes", {"notes": None}, "data.tables:write"),
    ("put", "/entries/{en}/notes", {"notes": None}, "data.tables:write"),
    ("post", "/entries/{en}/notes/append", {"content": [PARA]}, "data.tables:write"),
]
READS = [
    ("get", "/databases", None, "data.databases:read"),
    ("get", "/databases/{db}", None, "data.databases:read"),
    ("get", "/databases/{db}/tables", None, "data.tables:read"),
    ("get", "/tables/{tb}", None, "data.tables:read"),
    ("get", "/tables/{tb}/fields", None, "data.tables:read"),
    ("get", "/fields/{fd}", None, "data.tables:read"),
    ("get", "/tables/{tb}/entries", None, "data.tables:read"),
    ("post", "/tables/{tb}/entries/query", {}, "data.tables:read"),
    ("get", "/entries/{en}", None, "data.tables:read"),
    ("post", "/tables/{tb}/aggregate", {"function": "count"}, "data.tables:read"),
    ("get", "/entries/{en}/notes", None, "data.tables:read"),
]


async def test_read_only_key_cannot_write(api: Api, client: Any, orgs: Any) -> None:
    ids = await _fixture_ids(api)
    reader = await key(client, orgs.a, ["data.databases:read", "data.tables:read"])
    for method, path, body, scope in WRITES:
        status, err = await reader.call(method, path.format(**ids), body)
        assert status == 403, (method, path, status, err)
        assert assert_error(err, "insufficient_permissions")["details"] == {"required_scope": scope}, (method, path)
    for method, path, body, _ in READS:
        status, _ = await reader.call(method, path.format(**ids), body)
        assert status == 200, (method, path, status)
    # nothing was written
    assert (await api.ok("get", f"/fields/{ids['fd']}"))["data"]["name"] == "Name"
    assert_list(await api.ok("get", f"/tables/{ids['tb']}/entries"), 3)


async def test_key_without_data_scopes_cannot_read(api: Api, client: Any, orgs: Any) -> None:
    ids = await _fixture_ids(api)
    outsider = await key(client, orgs.a, ["agents:read"])
    for method, path, body, scope in READS:
        status, err = await outsider.call(method, path.format(**ids), body)
        assert status == 403, (method, path, status)
        assert_error(err, "insufficient_permissions")


async def test_tables_write_key_without_databases_scope(api: Api, client: Any, orgs: Any) -> None:
    ids = await _fixture_ids(api)
    writer = await key(client, orgs.a, ["data.tables:read", "data.tables:write"])
    await writer.ok("post", f"/tables/{ids['tb']}/entries", {"values": {"Name": "ok"}}, 201)
    await writer.ok("get", f"/databases/{ids['db']}/tables")
    _, err = await writer.call("post", "/databases", {"name": "x"}, 403)
    assert_error(err, "insufficient_permissions")


async def test_authentication_required(client: Any, orgs: Any) -> None:
    for method, path, body, _ in READS + WRITES:
        for headers in ({}, {"Authorization": "Bearer ak_not_a_key"}):
            response = await getattr(client, method)(f"/api/v1{path.format(db='db_x', tb='tb_x', fd='fd_x', en='en_x')}", json=body, headers=headers)
            assert response.status_code == 401, (method, path)
            assert_error(await response.get_json(), "authentication_required")


async def test_plan_limit_on_fields(api: Api, orgs: Any) -> None:
    await accounts.set_plan(orgs.a.id, "free")
    table = await api.table(fields=[{"name": f"F{i}", "type": "text"} for i in range(6)])
    _, err = await api.call("post", f"/tables/{table['id']}/fields", {"name": "eleventh", "type": "text"}, 402)
    assert_error(err, "plan_limit_reached")


# ---------------------------------------------------------------- hostile numbers and types

HUGE = [2**63, 2**64 + 1, -1, -(2**63) - 1, 10**30]


@pytest.mark.parametrize("param", ["limit", "offset"])
async def test_query_string_integers_out_of_range(api: Api, param: str) -> None:
    table = await api.table()
    for path in ("/databases", f"/databases/{table['database_id']}/tables", f"/tables/{table['id']}/fields",
                 f"/tables/{table['id']}/entries"):
        for value in [str(v) for v in HUGE] + ["1e3", "x", "1.5"]:
            status, err = await api.call("get", f"{path}?{param}={value}")
            assert status == 422, (path, param, value, status)
            assert_error(err, "validation_failed")


async def test_body_integers_out_of_range(api: Api) -> None:
    table = await api.table()
    tid = table["id"]
    for value in HUGE:
        for body in ({"limit": value}, {"offset": value}, {"limit": 10, "offset": value, "sort": [{"field": "Name", "direction": "asc"}]}):
            status, err = await api.call("post", f"/tables/{tid}/entries/query", body)
            assert status == 422, (body, status, err)
            assert_error(err, "validation_failed")
        status, err = await api.call("patch", f"/tables/{tid}", {"position": value})
        assert status == 422, (value, status, err)
        assert_error(err, "validation_failed")
    # the widest offset that is still valid reads an empty page
    assert (await api.ok("post", f"/tables/{tid}/entries/query", {"offset": 2**63 - 1}))["data"] == []
    big = (await api.ok("patch", f"/tables/{tid}", {"position": 2**31 - 1}))["data"]
    assert big["position"] == 2**31 - 1
    # a number value beyond 64 bits, a filter value beyond 64 bits, and a within period too long
    amount = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Amount", "type": "number"}, 201))["data"]
    for body in ({"values": {"Amount": 2**64}}, {"values": {"Amount": -(2**70)}}):
        status, err = await api.call("post", f"/tables/{tid}/entries", body)
        assert status == 422, (body, status, err)
    for flt in ({"field": "Amount", "op": "gt", "value": 2**64}, {"field": "Date", "op": "within", "value": {"period": "past_n_days", "days": 2**64}}):
        status, err = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [flt]})
        assert status == 422, (flt, status, err)
    status, err = await api.call("post", f"/tables/{tid}/fields", {"name": "P", "type": "number", "config": {"precision": 2**64}})
    assert status == 422, (status, err)
    assert amount["type"] == "number"


WRONG_TYPES: list[Any] = [None, True, 0, -1, 2**64, 1.5, "", "x", [], [1], {}, {"a": 1}]

BODY_FIELDS = [
    ("post", "/databases", {"name": "n", "description": "d", "color": "#fff"}),
    ("patch", "/databases/{db}", {"name": "n", "description": "d", "color": "#fff"}),
    ("post", "/databases/{db}/tables", {"name": "n"}),
    ("patch", "/tables/{tb}", {"name": "n", "position": 1}),
    ("post", "/tables/{tb}/fields", {"name": "n", "type": "text", "config": {}}),
    ("patch", "/fields/{fd}", {"name": "n", "type": "text", "config": {}, "dry_run": True}),
    ("post", "/tables/{tb}/entries", {"values": {"Name": "x"}}),
    ("patch", "/entries/{en}", {"values": {"Name": "x"}}),
    ("post", "/tables/{tb}/entries/query", {"filters": [], "sort": [], "search": "x", "limit": 5, "offset": 0, "cursor": None}),
    ("post", "/tables/{tb}/entries/bulk", {"operations": [{"action": "create", "values": {}}], "atomic": False}),
    ("post", "/tables/{tb}/aggregate", {"function": "count", "field": "Name", "filters": [], "search": "x", "group_by": "Status"}),
    ("patch", "/entries/{en}/notes", {"notes": None}),
    ("post", "/entries/{en}/notes/append", {"content": [PARA]}),
]


async def test_wrong_json_types_are_422_never_500(api: Api) -> None:
    ids = await _fixture_ids(api)
    for method, path, good in BODY_FIELDS:
        url = path.format(**ids)
        for name in good:
            for wrong in WRONG_TYPES:
                body = {**good, name: wrong}
                status, resp = await api.call(method, url, body)
                assert status in (200, 201, 422), (method, path, name, wrong, status, resp)
                if status == 422:
                    assert resp["error"]["code"] in ("validation_failed", "field_not_found", "invalid_filter", "invalid_sort")
        # not an object at all
        for whole in ([], "x", 1, None):
            response = await getattr(api.client, method)(f"/api/v1{url}", json=whole, headers=api.headers)
            assert response.status_code in (200, 201, 422), (method, path, whole, response.status_code)
    # bulk items, filters and sorts of the wrong shape
    for wrong in WRONG_TYPES:
        for body in ({"operations": [wrong]}, {"operations": [{"action": "update", "id": wrong, "values": {}}]},
                     {"operations": [{"action": wrong}]}, {"operations": [{"action": "create", "values": wrong}]}):
            status, resp = await api.call("post", f"/tables/{ids['tb']}/entries/bulk", body)
            assert status in (200, 422), (body, status, resp)
        for body in ({"filters": [wrong]}, {"filters": [{"field": wrong, "op": "is", "value": 1}]},
                     {"filters": [{"field": "Name", "op": wrong, "value": 1}]},
                     {"filters": [{"field": "Name", "op": "is", "value": wrong}]},
                     {"sort": [wrong]}, {"sort": [{"field": wrong}]}, {"sort": [{"field": "Name", "direction": wrong}]}):
            status, resp = await api.call("post", f"/tables/{ids['tb']}/entries/query", body)
            assert status in (200, 422), (body, status, resp)


async def test_keyset_pages_sorted_by_created_at(api: Api) -> None:
    table = await api.table()
    tid = table["id"]
    await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}] * 4})
    every = {e["id"] for e in (await api.ok("get", f"/tables/{tid}/entries"))["data"]}
    for direction in ("asc", "desc"):
        seen: list[str] = []
        body: dict[str, Any] = {"sort": [{"field": "created_at", "direction": direction}], "limit": 2, "cursor": None}
        while True:
            page = await api.ok("post", f"/tables/{tid}/entries/query", body)
            seen += [e["id"] for e in page["data"]]
            if not page["meta"]["has_more"]:
                break
            body["cursor"] = page["meta"]["next_cursor"]
        assert len(seen) == len(set(seen)) == 7 and set(seen) == every


async def test_tampered_cursors_are_422(api: Api) -> None:
    """A cursor is opaque but client-held; whatever it decodes to, a bad one is a 422."""
    from app.kernel.pagination import encode_cursor
    from app.store.query import _signature

    table = await api.table(fields=[{"name": "Amount", "type": "number"}])
    tid = table["id"]
    sorts: list[Any] = [None, [{"field": "Amount", "direction": "asc"}], [{"field": "Status", "direction": "desc"}],
                        [{"field": "created_at", "direction": "desc"}]]
    bad_values: list[Any] = [2**64, -(2**64), "x", [1], {"a": 1}, None, 1.5, True]
    for sort in sorts:
        width = 1 if sort is None else 2
        for bad in bad_values:
            for k in ([bad] * width, [bad, 1][:width], [None, bad][:width] if width == 2 else [bad]):
                cursor = encode_cursor({"k": k, "s": _signature([tid, sort, None, None])})
                status, body = await api.call("post", f"/tables/{tid}/entries/query", {"cursor": cursor, "sort": sort})
                assert status in (200, 422), (sort, k, status, body)
                if status == 422:
                    assert_error(body, "validation_failed")
    for cursor in ("!!!", "e30", encode_cursor({"k": "x", "s": "y"})):
        _, body = await api.call("post", f"/tables/{tid}/entries/query", {"cursor": cursor}, 422)
        assert "cursor" in assert_error(body, "validation_failed")["details"]


async def test_filter_values_beyond_64_bits_or_not_scalars(api: Api) -> None:
    items = await api.table("Items")
    table = await api.table(fields=[{"name": "Amount", "type": "number"}, {"name": "Who", "type": "user"}])
    tid = table["id"]
    await api.ok("post", f"/tables/{tid}/fields", {"name": "Link", "type": "relation", "config": {"table_id": items["id"]}}, 201)
    for name, ftype, cfg in (("F", "formula", {"expression": "{Amount} + 1"}),
                             ("R", "rollup", {"relation_field": "Link", "target_field": "Name", "function": "count"}),
                             ("L", "lookup", {"relation_field": "Link", "target_field": "Name"})):
        await api.ok("post", f"/tables/{tid}/fields", {"name": name, "type": ftype, "config": cfg}, 201)
    cases = [(f, op) for f in ("F", "R") for op in ("is", "is_not", "gt", "is_any_of")]
    cases += [(f, "has_any_of") for f in ("Link", "L", "Who")]
    for field, op in cases:
        for value in (2**64, -(2**64), [2**64], [{}], [[1]], {"a": 1}):
            status, err = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [{"field": field, "op": op, "value": value}]})
            assert status == 422, (field, op, value, status, err)
            assert_error(err, "invalid_filter")


async def test_nul_characters_never_reach_the_database(api: Api, client: Any) -> None:
    ids = await _fixture_ids(api)
    for path in ("/databases/db_%00", "/databases/db_%00/tables", "/tables/tb_%00", "/tables/tb_%00/fields",
                 "/fields/fd_%00", "/entries/en_%00", "/entries/en_%00/notes", "/tables/tb_%00/entries"):
        status, err = await api.call("get", path)
        assert status == 404, (path, status, err)
        assert_error(err, "not_found")
    for method, path, body in (("post", "/databases", {"name": "a\u0000b"}),
                               ("post", "/tables/{tb}/fields", {"name": "S", "type": "select", "config": {"options": [{"label": "\u0000"}]}}),
                               ("post", "/tables/{tb}/entries", {"values": {"Name": "x\u0000"}}),
                               ("post", "/tables/{tb}/entries/query", {"filters": [{"field": "Name", "op": "contains", "value": "\u0000"}]}),
                               ("patch", "/entries/{en}/notes", {"notes": {"type": "doc", "content": [
                                   {"type": "paragraph", "content": [{"type": "text", "text": "\u0000"}]}]}}),
                               ("post", "/tables/{tb}/entries", {"values": {"Na\u0000me": "x"}})):
        status, err = await api.call(method, path.format(**ids), body)
        assert status == 422, (path, status, err)
        assert_error(err, "validation_failed")


FUZZ: list[Any] = [None, True, 0, -1, 2**64, -(2**64), 1.5, "", "x", [], [1], [None], [{}], {}, {"a": 1}, "a" * 300]


async def test_every_field_type_refuses_wrong_values_with_422(api: Api) -> None:
    """Values, filter values and aggregate arguments of the wrong type, per field type."""
    items = await api.table("Items")
    table = await api.table(fields=[{"name": "Amount", "type": "number"},
                                    {"name": "Tags", "type": "multi_select", "config": {"options": [{"label": "a"}]}},
                                    {"name": "Who", "type": "user"}, {"name": "Site", "type": "url"},
                                    {"name": "Doc", "type": "file"},
                                    {"name": "Link", "type": "relation", "config": {"table_id": items["id"]}}])
    tid = table["id"]
    for name, ftype, cfg in (("F", "formula", {"expression": "{Amount} + 1"}),
                             ("R", "rollup", {"relation_field": "Link", "target_field": "Name", "function": "count"}),
                             ("L", "lookup", {"relation_field": "Link", "target_field": "Name"})):
        await api.ok("post", f"/tables/{tid}/fields", {"name": name, "type": ftype, "config": cfg}, 201)
    fields = (await api.ok("get", f"/tables/{tid}/fields"))["data"]
    assert len({f["type"] for f in fields}) == 13
    eid = (await api.ok("get", f"/tables/{tid}/entries"))["data"][0]["id"]
    for f in fields:
        for wrong in FUZZ:
            status, body = await api.call("patch", f"/entries/{eid}", {"values": {f["name"]: wrong}})
            assert status in (200, 422), (f["type"], wrong, status, body)
            for op in ("is", "contains", "gt", "between", "within", "has_any_of"):
                status, body = await api.call("post", f"/tables/{tid}/entries/query", {"filters": [{"field": f["name"], "op": op, "value": wrong}]})
                assert status in (200, 422), (f["type"], op, wrong, status, body)
        for fn in ("count", "sum", "min", "distinct_count"):
            status, body = await api.call("post", f"/tables/{tid}/aggregate", {"function": fn, "field": f["name"], "group_by": f["name"]})
            assert status in (200, 422), (f["type"], fn, status, body)


async def test_every_data_route_is_covered(app: Any) -> None:
    """The scope tables above (and the isolation routes) name every route the blueprint has."""
    from .test_rest_isolation import ROUTES

    names = {"<database_id>": "{db}", "<table_id>": "{tb}", "<field_id>": "{fd}", "<entry_id>": "{en}"}
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("data."):
            continue
        path = rule.rule.removeprefix("/api/v1")
        for raw, short in names.items():
            path = path.replace(raw, short)
        served |= {(m.lower(), path) for m in rule.methods if m not in ("HEAD", "OPTIONS")}
    covered = {(m, p) for m, p, _, _ in READS + WRITES}
    assert served == covered
    with_ids = {(m, p) for m, p in served if "{" in p}
    assert with_ids == {(m, p) for m, p, _ in ROUTES}
