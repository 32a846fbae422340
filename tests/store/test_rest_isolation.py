"""Another organization's ids are a 404 on every Data API route that takes one, and the
owner's data is exactly as it was afterwards."""

from __future__ import annotations

from typing import Any

from .conftest import Api

PARA = {"type": "paragraph", "content": [{"type": "text", "text": "x"}]}

ROUTES = [
    ("get", "/databases/{db}", None),
    ("patch", "/databases/{db}", {"name": "stolen"}),
    ("delete", "/databases/{db}", None),
    ("get", "/databases/{db}/tables", None),
    ("post", "/databases/{db}/tables", {"name": "planted"}),
    ("get", "/tables/{tb}", None),
    ("patch", "/tables/{tb}", {"name": "stolen", "position": 3}),
    ("delete", "/tables/{tb}", None),
    ("get", "/tables/{tb}/fields", None),
    ("post", "/tables/{tb}/fields", {"name": "planted", "type": "text"}),
    ("get", "/fields/{fd}", None),
    ("patch", "/fields/{fd}", {"name": "stolen"}),
    ("patch", "/fields/{fd}", {"type": "number", "dry_run": True}),
    ("patch", "/fields/{fd}", {"type": "number"}),
    ("delete", "/fields/{fd}", None),
    ("get", "/tables/{tb}/entries", None),
    ("post", "/tables/{tb}/entries", {"values": {"Name": "planted"}}),
    ("post", "/tables/{tb}/entries/query", {"filters": [{"field": "Name", "op": "is", "value": "secret"}]}),
    ("post", "/tables/{tb}/entries/bulk", {"operations": [{"action": "create", "values": {"Name": "planted"}}]}),
    ("post", "/tables/{tb}/aggregate", {"function": "count"}),
    ("get", "/entries/{en}", None),
    ("patch", "/entries/{en}", {"values": {"Name": "stolen"}}),
    ("delete", "/entries/{en}", None),
    ("get", "/entries/{en}/notes", None),
    ("patch", "/entries/{en}/notes", {"notes": None}),
    ("patch", "/entries/{en}/notes", {}),
    ("put", "/entries/{en}/notes", {"notes": None}),
    ("post", "/entries/{en}/notes/append", {"content": [PARA]}),
]


async def snapshot(api: Api) -> Any:
    """Everything organization A has, as its own key sees it."""
    out: dict[str, Any] = {"databases": await api.ok("get", "/databases")}
    for db in out["databases"]["data"]:
        tables = await api.ok("get", f"/databases/{db['id']}/tables")
        out[db["id"]] = tables
        for t in tables["data"]:
            out[t["id"]] = await api.ok("get", f"/tables/{t['id']}/entries")
            out[t["id"] + "/fields"] = await api.ok("get", f"/tables/{t['id']}/fields")
            for e in out[t["id"]]["data"]:
                out[e["id"]] = await api.ok("get", f"/entries/{e['id']}/notes")
    return out


async def owned(api: Api) -> dict[str, str]:
    table = await api.table("Secret", fields=[{"name": "Amount", "type": "number"}])
    entry = (await api.ok("post", f"/tables/{table['id']}/entries", {"values": {"Name": "secret", "Amount": 7}}, 201))["data"]
    await api.ok("patch", f"/entries/{entry['id']}/notes", {"notes": {"type": "doc", "content": [PARA]}})
    return {"db": table["database_id"], "tb": table["id"], "fd": table["fields"][0]["id"], "en": entry["id"]}


async def test_other_organizations_ids_are_404(api: Api, api_b: Api) -> None:
    ids = await owned(api)
    await api_b.table("Mine")  # B has data of its own, so this is not an empty-org accident
    before = await snapshot(api)
    for method, path, body in ROUTES:
        status, err = await api_b.call(method, path.format(**ids), body)
        assert status == 404, (method, path, status, err)
        assert err["error"]["code"] == "not_found", (method, path, err)
        assert "secret" not in str(err)
    assert await snapshot(api) == before


async def test_other_organizations_ids_inside_bodies(api: Api, api_b: Api) -> None:
    ids = await owned(api)
    before = await snapshot(api)
    mine = await api_b.table("Mine")
    # bulk items naming A's entry fail on their own (not found), the rest of the batch is B's
    result = (await api_b.ok("post", f"/tables/{mine['id']}/entries/bulk", {"operations": [
        {"action": "update", "id": ids["en"], "values": {"Name": "stolen"}},
        {"action": "delete", "id": ids["en"]},
    ]}))["data"]
    assert [r["error"]["code"] for r in result["results"]] == ["not_found", "not_found"]
    # a relation cannot point at A's table, nor a value at A's entry
    _, err = await api_b.call("post", f"/tables/{mine['id']}/fields", {"name": "Link", "type": "relation", "config": {"table_id": ids["tb"]}}, 422)
    assert "config.table_id" in err["error"]["details"]
    other = await api_b.table("Other")
    link = (await api_b.ok("post", f"/tables/{mine['id']}/fields", {"name": "Link", "type": "relation", "config": {"table_id": other["id"]}}, 201))["data"]
    _, err = await api_b.call("post", f"/tables/{mine['id']}/entries", {"values": {link["id"]: [ids["en"]]}}, 422)
    assert "Link" in err["error"]["details"]
    # A's field ids mean nothing in B's tables
    _, err = await api_b.call("post", f"/tables/{mine['id']}/entries/query", {"filters": [{"field": ids["fd"], "op": "is", "value": "secret"}]}, 422)
    assert err["error"]["code"] == "field_not_found"
    assert await snapshot(api) == before
