"""Formula, rollup and lookup fields: materialized, queryable, recomputed, checked."""

from __future__ import annotations

from typing import Any


async def test_formula_materialized_and_queryable(api: Any) -> None:
    table = await api.table(fields=[
        {"name": "Price", "type": "number"},
        {"name": "Qty", "type": "number"},
    ])
    tid = table["id"]
    await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "a", "Price": 2, "Qty": 3}}, 201)
    await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "b", "Price": 10, "Qty": 1}}, 201)
    # created after the entries: existing entries are computed
    total = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Total", "type": "formula",
             "config": {"expression": "{Price} * {Qty}"}}, 201))["data"]
    label = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Label", "type": "formula",
             "config": {"expression": 'IF({Total} > 8, CONCAT({Name}, " big"), "small")'}}, 201))["data"]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Total", "op": "gte", "value": 6}],
                                                              "sort": [{"field": "Total", "direction": "desc"}]})
    assert [e["values"][total["id"]] for e in q["data"]] == [10, 6]
    assert [e["values"][label["id"]] for e in q["data"]] == ["b big", "small"]
    # dependents recompute on write
    first = q["data"][1]
    updated = (await api.ok("patch", f"/entries/{first['id']}", {"values": {"Qty": 5}}))["data"]
    assert updated["values"][total["id"]] == 10 and updated["values"][label["id"]] == "a big"
    agg = await api.ok("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Total"})
    assert agg["data"]["result"] == 20
    # division by zero is empty; a computed field cannot be written
    zero = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Ratio", "type": "formula",
            "config": {"expression": "{Price} / 0"}}, 201))["data"]
    assert zero["id"] not in (await api.ok("get", f"/entries/{first['id']}"))["data"]["values"]
    _, err = await api.call("patch", f"/entries/{first['id']}", {"values": {"Total": 1}}, 422)
    assert "Total" in err["error"]["details"]
    # changing the expression recomputes
    await api.ok("patch", f"/fields/{total['id']}", {"config": {"expression": "{Price} + {Qty}"}})
    assert (await api.ok("get", f"/entries/{first['id']}"))["data"]["values"][total["id"]] == 7


async def test_formula_errors(api: Any) -> None:
    table = await api.table(fields=[{"name": "A", "type": "number"}])
    tid = table["id"]
    _, err = await api.call("post", f"/tables/{tid}/fields", {"name": "F", "type": "formula", "config": {"expression": "{A} + * 2"}}, 422)
    assert err["error"]["code"] == "validation_failed" and isinstance(err["error"]["details"]["position"], int)
    _, err = await api.call("post", f"/tables/{tid}/fields", {"name": "F", "type": "formula", "config": {"expression": "{Nope} + 1"}}, 422)
    assert err["error"]["code"] == "validation_failed"
    f1 = (await api.ok("post", f"/tables/{tid}/fields", {"name": "F1", "type": "formula", "config": {"expression": "{A} + 1"}}, 201))["data"]
    await api.ok("post", f"/tables/{tid}/fields", {"name": "F2", "type": "formula", "config": {"expression": "{F1} + 1"}}, 201)
    _, err = await api.call("patch", f"/fields/{f1['id']}", {"config": {"expression": "{F2} + 1"}}, 422)
    assert "ircular" in err["error"]["message"]
    _, err = await api.call("post", f"/tables/{tid}/fields", {"name": "Self", "type": "formula", "config": {"expression": "{Self} + 1"}}, 422)
    assert "ircular" in err["error"]["message"]
    # system fields
    sys_f = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Year", "type": "formula",
             "config": {"expression": "YEAR({created_date})"}}, 201))["data"]
    e = (await api.ok("post", f"/tables/{tid}/entries", {"values": {}}, 201))["data"]
    assert isinstance(e["values"][sys_f["id"]], int) and e["values"][sys_f["id"]] >= 2025


async def test_rollup_and_lookup_follow_links(api: Any) -> None:
    items = await api.table("Items", fields=[{"name": "Cost", "type": "number"}])
    a = (await api.ok("post", f"/tables/{items['id']}/entries", {"values": {"Name": "bolt", "Cost": 2}}, 201))["data"]
    b = (await api.ok("post", f"/tables/{items['id']}/entries", {"values": {"Name": "nut", "Cost": 3}}, 201))["data"]
    orders = await api.table("Orders", fields=[{"name": "Items", "type": "relation", "config": {"table_id": items["id"]}}])
    tid = orders["id"]
    total = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Total", "type": "rollup",
             "config": {"relation_field": "Items", "target_field": "Cost", "function": "sum"}}, 201))["data"]
    count = (await api.ok("post", f"/tables/{tid}/fields", {"name": "N", "type": "rollup",
             "config": {"relation_field": "Items", "target_field": "Cost", "function": "count"}}, 201))["data"]
    names = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Names", "type": "lookup",
             "config": {"relation_field": "Items", "target_field": "Name"}}, 201))["data"]
    text = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Summary", "type": "formula",
            "config": {"expression": 'CONCAT({Items}, " = ", {Total})'}}, 201))["data"]
    order = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Items": [a["id"], b["id"]]}}, 201))["data"]
    v = order["values"]
    assert (v[total["id"]], v[count["id"]], v[names["id"]], v[text["id"]]) == (5, 2, ["bolt", "nut"], "bolt, nut = 5")
    # a change in the linked table recomputes the order
    await api.ok("patch", f"/entries/{a['id']}", {"values": {"Cost": 10}})
    v = (await api.ok("get", f"/entries/{order['id']}"))["data"]["values"]
    assert v[total["id"]] == 13 and v[text["id"]] == "bolt, nut = 13"
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Total", "op": "gt", "value": 12}]})
    assert [e["id"] for e in q["data"]] == [order["id"]]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Names", "op": "has_any_of", "value": ["nut"]}]})
    assert [e["id"] for e in q["data"]] == [order["id"]]
    await api.call("delete", f"/entries/{b['id']}", None, 204)
    v = (await api.ok("get", f"/entries/{order['id']}"))["data"]["values"]
    assert v[total["id"]] == 10 and v[count["id"]] == 1 and v[names["id"]] == ["bolt"]
    await api.call("post", f"/tables/{tid}/fields", {"name": "Bad", "type": "rollup",
                   "config": {"relation_field": "Name", "target_field": "Cost"}}, 422)
