"""Databases, tables and fields over REST: shapes, soft deletes, scopes, isolation."""

from __future__ import annotations

from typing import Any


async def test_database_crud(api: Any) -> None:
    created = await api.ok("post", "/databases", {"name": "CRM", "description": "Sales", "color": "#3B82F6"}, 201)
    db = created["data"]
    assert db["id"].startswith("db_") and db["name"] == "CRM" and db["color"] == "#3B82F6"
    assert db["created_at"].endswith("Z")
    listed = await api.ok("get", "/databases")
    assert listed["meta"] == {"total": 1, "limit": 50, "offset": 0}
    patched = await api.ok("patch", f"/databases/{db['id']}", {"name": "Renamed"})
    assert patched["data"]["name"] == "Renamed"
    assert (await api.ok("get", f"/databases/{db['id']}"))["data"]["name"] == "Renamed"
    await api.call("post", "/databases", {"name": "x", "color": "blue"}, 422)
    await api.call("post", "/databases", {}, 422)
    table = (await api.ok("post", f"/databases/{db['id']}/tables", {"name": "T"}, 201))["data"]
    await api.call("delete", f"/databases/{db['id']}", None, 204)
    await api.call("get", f"/databases/{db['id']}", None, 404)
    await api.call("get", f"/tables/{table['id']}", None, 404)
    assert (await api.ok("get", "/databases"))["meta"]["total"] == 0


async def test_table_crud_and_fields(api: Any) -> None:
    table = await api.table()
    assert table["id"].startswith("tb_")
    status = table["fields"][1]
    assert all(o["id"].startswith("op_") for o in status["config"]["options"])
    db_id = table["database_id"]
    listed = await api.ok("get", f"/databases/{db_id}/tables")
    assert listed["meta"]["total"] == 1 and listed["data"][0]["fields"][0]["name"] == "Name"
    renamed = await api.ok("patch", f"/tables/{table['id']}", {"name": "Todo"})
    assert renamed["data"]["name"] == "Todo"

    f = (await api.ok("post", f"/tables/{table['id']}/fields", {"name": "Priority", "type": "select",
          "config": {"options": [{"label": "High", "color": "red"}, {"label": "Low", "color": "gray"}]}}, 201))["data"]
    assert f["id"].startswith("fd_") and f["position"] == 4
    assert [o["label"] for o in f["config"]["options"]] == ["High", "Low"]
    dup = await api.call("post", f"/tables/{table['id']}/fields", {"name": "priority", "type": "text"}, 422)
    assert dup[1]["error"]["details"] == {"name": ["a field with this name already exists in this table"]}
    await api.call("post", f"/tables/{table['id']}/fields", {"name": "X", "type": "nope"}, 422)
    upd = await api.ok("patch", f"/fields/{f['id']}", {"name": "Urgency"})
    assert upd["data"]["name"] == "Urgency"
    assert (await api.ok("get", f"/fields/{f['id']}"))["data"]["name"] == "Urgency"
    fields = await api.ok("get", f"/tables/{table['id']}/fields")
    assert [x["name"] for x in fields["data"]][-1] == "Urgency"
    # values of a deleted field are hidden; the field is gone from the list
    entry = (await api.ok("post", f"/tables/{table['id']}/entries", {"values": {"Urgency": "High"}}, 201))["data"]
    assert f["id"] in entry["values"]
    await api.call("delete", f"/fields/{f['id']}", None, 204)
    await api.call("get", f"/fields/{f['id']}", None, 404)
    assert (await api.ok("get", f"/entries/{entry['id']}"))["data"]["values"] == {}
    await api.call("delete", f"/tables/{table['id']}", None, 204)
    await api.call("get", f"/tables/{table['id']}", None, 404)
    await api.call("get", f"/entries/{entry['id']}", None, 404)


async def test_scopes(client: Any, orgs: Any, api: Any) -> None:
    table = await api.table()
    response = await client.post(
        "/api/v1/api-keys", json={"name": "ro", "scopes": ["data.tables:read", "data.databases:read"]}, headers=orgs.a.headers
    )
    key = (await response.get_json())["api_key"]["key"]
    from tests.store.conftest import Api

    ro = Api(client, {"Authorization": f"Bearer {key}"})
    await ro.call("get", f"/tables/{table['id']}/entries", None, 200)
    _, body = await ro.call("post", f"/tables/{table['id']}/entries", {"values": {}}, 403)
    assert body["error"]["code"] == "insufficient_permissions"
    await ro.call("post", "/databases", {"name": "x"}, 403)
    await ro.call("post", f"/tables/{table['id']}/fields", {"name": "x", "type": "text"}, 403)
    noauth = Api(client, {})
    _, body = await noauth.call("get", "/databases", None, 401)
    assert body["error"]["code"] == "authentication_required"


async def test_isolation_across_organizations(api: Any, api_b: Any) -> None:
    table = await api.table()
    tid, db_id = table["id"], table["database_id"]
    fid = table["fields"][0]["id"]
    entry = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "secret"}}, 201))["data"]
    eid = entry["id"]
    calls = [
        ("get", f"/databases/{db_id}", None),
        ("patch", f"/databases/{db_id}", {"name": "x"}),
        ("delete", f"/databases/{db_id}", None),
        ("get", f"/databases/{db_id}/tables", None),
        ("post", f"/databases/{db_id}/tables", {"name": "x"}),
        ("get", f"/tables/{tid}", None),
        ("patch", f"/tables/{tid}", {"name": "x"}),
        ("delete", f"/tables/{tid}", None),
        ("get", f"/tables/{tid}/fields", None),
        ("post", f"/tables/{tid}/fields", {"name": "x", "type": "text"}),
        ("get", f"/fields/{fid}", None),
        ("patch", f"/fields/{fid}", {"name": "x"}),
        ("delete", f"/fields/{fid}", None),
        ("get", f"/tables/{tid}/entries", None),
        ("post", f"/tables/{tid}/entries", {"values": {}}),
        ("post", f"/tables/{tid}/entries/query", {}),
        ("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}]}),
        ("post", f"/tables/{tid}/aggregate", {"function": "count"}),
        ("get", f"/entries/{eid}", None),
        ("patch", f"/entries/{eid}", {"values": {"Name": "x"}}),
        ("delete", f"/entries/{eid}", None),
        ("get", f"/entries/{eid}/notes", None),
        ("patch", f"/entries/{eid}/notes", {"notes": None}),
        ("post", f"/entries/{eid}/notes/append", {"content": [{"type": "paragraph"}]}),
    ]
    for method, path, body in calls:
        status, out = await api_b.call(method, path, body)
        assert status == 404, (method, path, status, out)
        assert out["error"]["code"] == "not_found"
    # org B's own bulk update cannot touch org A's entry either
    other = await api_b.table()
    result = await api_b.ok("post", f"/tables/{other['id']}/entries/bulk",
                            {"operations": [{"action": "update", "id": eid, "values": {"Name": "x"}}]})
    assert result["data"]["failed"] == 1
    assert (await api.ok("get", f"/entries/{eid}"))["data"]["values"] == {fid: "secret"}
    assert (await api_b.ok("get", "/databases"))["meta"]["total"] == 1
