"""A rollup or lookup whose relation, linked table or target field is gone is broken, not
blocking: its values are empty, the field says why (``config_error``), it can be repaired or
deleted, and the table's other computed fields can still be created and changed."""

from __future__ import annotations

from typing import Any

from .conftest import Api
from .test_dependents import computed, linked

NO_TARGET = "config.target_field: no such field in the linked table"
NO_TABLE = "config.target_field: the linked table no longer exists"
NO_RELATION = "config.relation_field: must name a relation field of this table"


async def errors(api: Api, table_id: str) -> dict[str, Any]:
    """config_error by field name, as the table, the field list and each field show it."""
    table = (await api.ok("get", f"/tables/{table_id}"))["data"]
    listed = (await api.ok("get", f"/tables/{table_id}/fields"))["data"]
    assert listed == table["fields"]
    for f in table["fields"]:
        assert (await api.ok("get", f"/fields/{f['id']}"))["data"] == f
        assert "config_error" not in f or f["type"] in ("formula", "rollup", "lookup")
    return {f["name"]: f["config_error"] for f in table["fields"] if "config_error" in f}


async def test_formula_fields_still_writable_when_a_rollup_target_is_deleted(api: Api) -> None:
    ctx = await linked(api)
    tid = ctx["orders"]["id"]
    await api.call("delete", f"/fields/{ctx['items']['fields'][-1]['id']}", None, 204)
    two = (await api.ok("post", f"/tables/{tid}/fields", {"name": "Two", "type": "formula", "config": {"expression": "1 + 1"}}, 201))["data"]
    assert "config_error" not in two
    assert (await api.ok("get", f"/entries/{ctx['order']['id']}"))["data"]["values"][two["id"]] == 2
    # an existing formula can be changed, and may even read the broken rollup (empty)
    summary = (await api.ok("patch", f"/fields/{ctx['f']['Summary']}", {"config": {"expression": 'CONCAT({Names}, "!", {Total})'}}))["data"]
    assert "config_error" not in summary
    assert (await computed(api, ctx))["Summary"] == "bolt, nut!"
    # other kinds of fields too
    await api.ok("post", f"/tables/{tid}/fields", {"name": "Note", "type": "text"}, 201)
    await api.ok("post", f"/tables/{tid}/fields", {"name": "Count", "type": "rollup",
                 "config": {"relation_field": "Items", "target_field": "Name", "function": "count"}}, 201)


async def test_broken_rollup_says_why_and_can_be_repaired_or_deleted(api: Api) -> None:
    ctx = await linked(api)
    tid, items = ctx["orders"]["id"], ctx["items"]
    assert await errors(api, tid) == {}
    await api.call("delete", f"/fields/{items['fields'][-1]['id']}", None, 204)
    assert await errors(api, tid) == {"Total": NO_TARGET, "N": NO_TARGET}
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": ["bolt", "nut"], "Summary": "bolt, nut = "}
    # the broken field itself is still checked when it is written
    _, err = await api.call("patch", f"/fields/{ctx['f']['Total']}", {"name": "Sum"}, 422)
    assert err["error"]["details"] == {"config.target_field": ["must name a field of the linked table"]}
    # repaired: a new target field
    await api.ok("post", f"/tables/{items['id']}/fields", {"name": "Price", "type": "number"}, 201)
    for entry, price in ((ctx["a"], 10), (ctx["b"], 20)):
        await api.ok("patch", f"/entries/{entry['id']}", {"values": {"Price": price}})
    repaired = (await api.ok("patch", f"/fields/{ctx['f']['Total']}", {"config": {"target_field": "Price"}}))["data"]
    assert "config_error" not in repaired
    assert await errors(api, tid) == {"N": NO_TARGET}
    assert (await computed(api, ctx))["Total"] == 30
    # deleted
    await api.call("delete", f"/fields/{ctx['f']['N']}", None, 204)
    assert await errors(api, tid) == {}


async def test_rollup_over_a_deleted_table_is_broken(api: Api) -> None:
    ctx = await linked(api)
    tid = ctx["orders"]["id"]
    await api.call("delete", f"/tables/{ctx['items']['id']}", None, 204)
    assert await errors(api, tid) == {"Total": NO_TABLE, "N": NO_TABLE, "Names": NO_TABLE}
    listed = (await api.ok("get", f"/databases/{ctx['orders']['database_id']}/tables"))["data"]
    assert {f["name"]: f.get("config_error") for f in listed[0]["fields"]}["Names"] == NO_TABLE
    # repaired: the relation points at a live table, the lookup at one of its fields
    parts = await api.table("Parts", fields=[{"name": "Weight", "type": "number"}])
    await api.ok("patch", f"/fields/{(await api.ok('get', f'/tables/{tid}'))['data']['fields'][4]['id']}",
                 {"config": {"table_id": parts["id"]}})
    await api.ok("patch", f"/fields/{ctx['f']['Names']}", {"config": {"target_field": "Weight"}})
    assert await errors(api, tid) == {"Total": NO_TARGET, "N": NO_TARGET}


async def test_rollup_and_formula_over_a_deleted_relation_are_broken(api: Api) -> None:
    ctx = await linked(api)
    tid = ctx["orders"]["id"]
    relation = (await api.ok("get", f"/tables/{tid}"))["data"]["fields"][4]
    assert relation["name"] == "Items"
    await api.call("delete", f"/fields/{relation['id']}", None, 204)
    assert await errors(api, tid) == {
        "Total": NO_RELATION,
        "N": NO_RELATION,
        "Names": NO_RELATION,
        "Summary": "config.expression: references unknown field 'Items'",
    }
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": None, "Summary": " = "}
    await api.ok("post", f"/tables/{tid}/fields", {"name": "Two", "type": "formula", "config": {"expression": "1 + 1"}}, 201)


async def test_relation_pointed_elsewhere_empties_its_rollups(api: Api) -> None:
    ctx = await linked(api)
    tid = ctx["orders"]["id"]
    relation = (await api.ok("get", f"/tables/{tid}"))["data"]["fields"][4]
    other = await api.table("Other")
    await api.ok("patch", f"/fields/{relation['id']}", {"config": {"table_id": other["id"]}})
    # targets are kept by id: the other table's "Name" is not the lookup's target
    assert await errors(api, tid) == {"Total": NO_TARGET, "N": NO_TARGET, "Names": NO_TARGET}
    assert await computed(api, ctx) == {"Total": None, "N": None, "Names": None, "Summary": " = "}
