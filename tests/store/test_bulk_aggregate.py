"""Bulk writes (per-item results, atomic) and aggregates (filters, group_by)."""

from __future__ import annotations

from typing import Any


async def test_bulk_per_item_results_and_atomic(api: Any) -> None:
    table = await api.table()
    tid = table["id"]
    first = (await api.ok("get", f"/tables/{tid}/entries"))["data"]
    ops = [
        {"action": "create", "values": {"Name": "New task"}},
        {"action": "update", "id": first[0]["id"], "values": {"Status": "Done"}},
        {"action": "delete", "id": first[1]["id"]},
        {"action": "update", "id": "en_missing", "values": {"Name": "x"}},
        {"action": "create", "values": {"Status": "Nope"}},
        {"action": "explode"},
    ]
    body = (await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": ops}))["data"]
    assert (body["total"], body["succeeded"], body["failed"]) == (6, 3, 3)
    assert [r["status"] for r in body["results"]] == ["ok", "ok", "ok", "error", "error", "error"]
    assert body["results"][0]["id"].startswith("en_")
    assert body["results"][3]["error"]["code"] == "not_found"
    assert body["results"][4]["error"]["code"] == "validation_failed"
    assert (await api.ok("get", f"/tables/{tid}/entries"))["meta"]["total"] == 3
    await api.call("get", f"/entries/{first[1]['id']}", None, 404)

    atomic = [{"action": "create", "values": {"Name": "a"}}, {"action": "delete", "id": first[2]["id"]},
              {"action": "create", "values": {"Done": "maybe"}}]
    _, err = await api.call("post", f"/tables/{tid}/entries/bulk", {"operations": atomic, "atomic": True}, 422)
    assert [r["status"] for r in err["error"]["details"]["results"]] == ["rolled_back", "rolled_back", "error"]
    assert (await api.ok("get", f"/tables/{tid}/entries"))["meta"]["total"] == 3
    await api.ok("get", f"/entries/{first[2]['id']}")
    ok = await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": atomic[:2], "atomic": True})
    assert ok["data"]["succeeded"] == 2
    await api.call("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}] * 101}, 422)
    await api.call("post", f"/tables/{tid}/entries/bulk", {"operations": []}, 422)


async def test_aggregates(api: Any) -> None:
    table = await api.table(fields=[{"name": "Amount", "type": "number"}])
    tid = table["id"]
    rows = [("To do", 10), ("To do", 5), ("Done", 2.5), ("Done", None), (None, 7)]
    await api.ok("post", f"/tables/{tid}/entries/bulk",
                 {"operations": [{"action": "create", "values": {"Status": s, "Amount": a}} for s, a in rows]})

    async def agg(**body: Any) -> Any:
        return (await api.ok("post", f"/tables/{tid}/aggregate", body))["data"]

    assert await agg(function="count") == {"function": "count", "result": 8}
    assert (await agg(function="count", field="Amount"))["result"] == 4
    assert (await agg(function="sum", field="Amount"))["result"] == 24.5
    assert (await agg(function="avg", field="amount"))["result"] == 6.125
    assert (await agg(function="min", field="Amount"))["result"] == 2.5
    assert (await agg(function="max", field="Amount"))["result"] == 10
    assert (await agg(function="distinct_count", field="Status"))["result"] == 2
    assert (await agg(function="sum", field="Amount", filters=[{"field": "Status", "op": "is", "value": "To do"}]))["result"] == 15
    grouped = await agg(function="sum", field="Amount", group_by="Status")
    by_label = {g["label"]: g["result"] for g in grouped["groups"]}
    assert by_label == {None: 7, "To do": 15, "Done": 2.5}
    counted = await agg(function="count", group_by="Status")
    assert sorted(g["result"] for g in counted["groups"]) == [2, 2, 4]
    _, err = await api.call("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Name"}, 422)
    assert err["error"]["code"] == "validation_failed"
    await api.call("post", f"/tables/{tid}/aggregate", {"function": "median", "field": "Amount"}, 422)
    await api.call("post", f"/tables/{tid}/aggregate", {"function": "sum"}, 422)
    _, err = await api.call("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Amout"}, 422)
    assert err["error"]["code"] == "field_not_found"
