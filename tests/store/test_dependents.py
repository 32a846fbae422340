"""Rollups, lookups and formulas reading through a relation never go stale: not when a linked
entry, field, table or database is deleted, and not past any fixed number of dependents."""

from __future__ import annotations

from typing import Any

from app.kernel.auth import authenticate_token
from app.store import entries

from .conftest import Api


async def linked(api: Api, *, separate_database: bool = False) -> dict[str, Any]:
    items = await api.table("Items", fields=[{"name": "Cost", "type": "number"}])
    a = (await api.ok("post", f"/tables/{items['id']}/entries", {"values": {"Name": "bolt", "Cost": 2}}, 201))["data"]
    b = (await api.ok("post", f"/tables/{items['id']}/entries", {"values": {"Name": "nut", "Cost": 3}}, 201))["data"]
    if separate_database:
        orders = await api.table("Orders", fields=[{"name": "Items", "type": "relation", "config": {"table_id": items["id"]}}])
    else:
        orders = (await api.ok("post", f"/databases/{items['database_id']}/tables", {"name": "Orders"}, 201))["data"]
        await api.ok("post", f"/tables/{orders['id']}/fields", {"name": "Items", "type": "relation", "config": {"table_id": items["id"]}}, 201)
    tid = orders["id"]
    fields = {}
    for name, ftype, cfg in (
        ("Total", "rollup", {"relation_field": "Items", "target_field": "Cost", "function": "sum"}),
        ("N", "rollup", {"relation_field": "Items", "target_field": "Cost", "function": "count"}),
        ("Names", "lookup", {"relation_field": "Items", "target_field": "Name"}),
        ("Summary", "formula", {"expression": 'CONCAT({Items}, " = ", {Total})'}),
    ):
        fields[name] = (await api.ok("post", f"/tables/{tid}/fields", {"name": name, "type": ftype, "config": cfg}, 201))["data"]["id"]
    order = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Items": [a["id"], b["id"]]}}, 201))["data"]
    values = order["values"]
    assert [values[fields[k]] for k in ("Total", "N", "Names", "Summary")] == [5, 2, ["bolt", "nut"], "bolt, nut = 5"]
    return {"items": items, "orders": orders, "a": a, "b": b, "order": order, "f": fields}


async def computed(api: Api, ctx: dict[str, Any]) -> dict[str, Any]:
    values = (await api.ok("get", f"/entries/{ctx['order']['id']}"))["data"]["values"]
    return {name: values.get(fid) for name, fid in ctx["f"].items()}


async def test_linked_entry_deleted_in_bulk(api: Api) -> None:
    ctx = await linked(api)
    await api.ok("post", f"/tables/{ctx['items']['id']}/entries/bulk", {"operations": [{"action": "delete", "id": ctx["b"]["id"]}]})
    assert await computed(api, ctx) == {"Total": 2, "N": 1, "Names": ["bolt"], "Summary": "bolt = 2"}
    await api.call("delete", f"/entries/{ctx['a']['id']}", None, 204)
    assert await computed(api, ctx) == {"Total": 0, "N": 0, "Names": None, "Summary": " = 0"}


async def test_linked_table_deleted(api: Api) -> None:
    ctx = await linked(api)
    await api.call("delete", f"/tables/{ctx['items']['id']}", None, 204)
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": None, "Summary": " = "}
    # the orders table itself still works
    total = await api.ok("post", f"/tables/{ctx['orders']['id']}/entries/query", {"filters": [{"field": "Total", "op": "is_not_empty"}]})
    assert total["meta"]["total"] == 0


async def test_linked_database_deleted(api: Api) -> None:
    ctx = await linked(api, separate_database=True)
    await api.call("delete", f"/databases/{ctx['items']['database_id']}", None, 204)
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": None, "Summary": " = "}
    await api.ok("get", f"/tables/{ctx['orders']['id']}")


async def test_linked_target_field_deleted(api: Api) -> None:
    ctx = await linked(api)
    cost = ctx["items"]["fields"][-1]["id"]
    await api.call("delete", f"/fields/{cost}", None, 204)
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": ["bolt", "nut"], "Summary": "bolt, nut = "}


async def test_rollups_cleared_when_their_target_field_goes(api: Api) -> None:
    """Only rollups over the relation (nothing else reads it): they still count as readers."""
    ctx = await linked(api)
    for name in ("Summary", "Names"):
        await api.call("delete", f"/fields/{ctx['f'][name]}", None, 204)
    await api.call("delete", f"/fields/{ctx['items']['fields'][-1]['id']}", None, 204)
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": None, "Summary": None}


async def test_propagation_reaches_every_dependent_past_ten_thousand(api: Api, orgs: Any) -> None:
    ctx = await linked(api)
    many = 10_050
    principal = await authenticate_token(orgs.a.api_key)
    await entries.create_entries(principal, ctx["orders"]["id"], [{"Items": [ctx["a"]["id"]]}] * many)
    tid = ctx["orders"]["id"]

    async def count(**flt: Any) -> int:
        body = await api.ok("post", f"/tables/{tid}/aggregate", {"function": "count", "filters": [flt]})
        return int(body["data"]["result"])

    assert await count(field="Total", op="is", value=2) == many
    await api.ok("patch", f"/entries/{ctx['a']['id']}", {"values": {"Cost": 7}})
    assert await count(field="Total", op="is", value=7) == many
    assert await count(field="Total", op="is", value=2) == 0
    await api.call("delete", f"/entries/{ctx['a']['id']}", None, 204)
    # plus the table's 3 default entries, which link nothing
    assert await count(field="Total", op="is", value=0) == many + 3
    assert await count(field="N", op="is", value=0) == many + 3
    assert await computed(api, ctx) == {"Total": 3, "N": 1, "Names": ["nut"], "Summary": "nut = 3"}


async def test_chains_of_rollups_five_tables_deep(api: Api) -> None:
    """A <- B <- C <- D <- E, each summing the one before: a change at A reaches E, for an
    entry change and for a schema change (A's field deleted) alike."""
    a = await api.table("A", fields=[{"name": "Cost", "type": "number"}])
    prev, prev_entry, target = a, None, "Cost"
    prev_entry = (await api.ok("post", f"/tables/{a['id']}/entries", {"values": {"Cost": 4}}, 201))["data"]
    first = prev_entry
    chain = []
    for name in ("B", "C", "D", "E"):
        t = (await api.ok("post", f"/databases/{a['database_id']}/tables", {"name": name}, 201))["data"]
        await api.ok("post", f"/tables/{t['id']}/fields", {"name": "Up", "type": "relation", "config": {"table_id": prev["id"]}}, 201)
        total = (await api.ok("post", f"/tables/{t['id']}/fields", {"name": "Total", "type": "rollup",
                 "config": {"relation_field": "Up", "target_field": target, "function": "sum"}}, 201))["data"]
        prev_entry = (await api.ok("post", f"/tables/{t['id']}/entries", {"values": {"Up": [prev_entry["id"]]}}, 201))["data"]
        chain.append((prev_entry["id"], total["id"]))
        prev, target = t, "Total"

    async def totals() -> list[Any]:
        return [(await api.ok("get", f"/entries/{eid}"))["data"]["values"].get(fid) for eid, fid in chain]

    assert await totals() == [4, 4, 4, 4]
    await api.ok("patch", f"/entries/{first['id']}", {"values": {"Cost": 9}})
    assert await totals() == [9, 9, 9, 9]
    await api.call("delete", f"/fields/{a['fields'][-1]['id']}", None, 204)
    assert await totals() == [None, 0, 0, 0]
