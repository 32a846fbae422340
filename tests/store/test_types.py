"""Every field type: accepted values, stored shape, 422 per-field details; type conversion."""

from __future__ import annotations

from typing import Any

FIELDS = [
    {"name": "Amount", "type": "number", "config": {"precision": 2}},
    {"name": "Tags", "type": "multi_select", "config": {"options": [{"label": "Red"}, {"label": "Blue"}]}},
    {"name": "When", "type": "date", "config": {"include_time": True}},
    {"name": "Site", "type": "url"},
    {"name": "Attachment", "type": "file"},
    {"name": "Owner", "type": "user"},
]


async def _field(table: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in table["fields"] if f["name"] == name)


async def test_values_per_type(api: Any, orgs: Any) -> None:
    table = await api.table(fields=FIELDS)
    tid = table["id"]
    f = {x["name"]: x for x in table["fields"]}
    red = f["Tags"]["config"]["options"][0]["id"]
    blue = f["Tags"]["config"]["options"][1]["id"]
    values = {
        "Name": "Alpha",
        "status": "in progress",
        "Date": "2025-02-28",
        "Done": True,
        "Amount": 12.345,
        "Tags": ["Red", blue, "red"],
        "When": "2025-03-01T10:30:00+02:00",
        "Site": "https://example.com/x",
        "Attachment": [await api.file(b"0123456789")],
        "Owner": orgs.a.owner_email,
    }
    entry = (await api.ok("post", f"/tables/{tid}/entries", {"values": values}, 201))["data"]
    v = entry["values"]
    in_progress = next(o["id"] for o in f["Status"]["config"]["options"] if o["label"] == "In progress")
    assert v[f["Name"]["id"]] == "Alpha"
    assert v[f["Status"]["id"]] == in_progress
    assert v[f["Date"]["id"]] == "2025-02-28"
    assert v[f["Done"]["id"]] is True
    assert v[f["Amount"]["id"]] == 12.35
    assert v[f["Tags"]["id"]] == [red, blue]
    assert v[f["When"]["id"]] == "2025-03-01T08:30:00Z"
    assert v[f["Site"]["id"]] == "https://example.com/x"
    assert v[f["Attachment"]["id"]][0]["filename"] == "a.pdf" and v[f["Attachment"]["id"]][0]["size"] == 10
    assert v[f["Owner"]["id"]] == orgs.a.owner_id

    bad = {
        "Amount": "abc",
        "Status": "Nope",
        "Date": "28/02/2025",
        "Done": "yes",
        "Site": "ftp://x",
        "Attachment": ["x"],
        "Owner": "stranger@example.com",
    }
    for key, value in bad.items():
        status, body = await api.call("post", f"/tables/{tid}/entries", {"values": {key: value}})
        assert status == 422, (key, body)
        assert body["error"]["code"] == "validation_failed"
        assert list(body["error"]["details"]) == [f[key]["id"] and next(x["name"] for x in table["fields"] if x["name"].lower() == key.lower())]
    status, body = await api.call("post", f"/tables/{tid}/entries", {"values": {"Nam": "x"}})
    assert status == 422 and body["error"]["code"] == "field_not_found"
    assert body["error"]["details"]["suggestions"] == ["Name"]
    # update merges; null clears
    updated = (await api.ok("patch", f"/entries/{entry['id']}", {"values": {"Amount": None, "Name": "Beta"}}))["data"]
    assert f["Amount"]["id"] not in updated["values"] and updated["values"][f["Name"]["id"]] == "Beta"
    assert updated["values"][f["Tags"]["id"]] == [red, blue]


async def test_relation_and_user_checks(api: Any, api_b: Any, orgs: Any) -> None:
    people = await api.table("People")
    person = (await api.ok("post", f"/tables/{people['id']}/entries", {"values": {"Name": "Ann"}}, 201))["data"]
    tasks = await api.table("Tasks", fields=[{"name": "Who", "type": "relation", "config": {"table_id": people["id"]}}])
    who = next(x for x in tasks["fields"] if x["name"] == "Who")
    e = (await api.ok("post", f"/tables/{tasks['id']}/entries", {"values": {"Who": [person["id"]]}}, 201))["data"]
    assert e["values"][who["id"]] == [person["id"]]
    status, body = await api.call("post", f"/tables/{tasks['id']}/entries", {"values": {"Who": ["en_missing"]}})
    assert status == 422 and "Who" in body["error"]["details"]
    # an entry of another table (or organization) is not a valid link
    own = (await api.ok("get", f"/tables/{tasks['id']}/entries"))["data"][0]["id"]
    status, _ = await api.call("post", f"/tables/{tasks['id']}/entries", {"values": {"Who": [own]}})
    assert status == 422
    other = await api_b.table()
    await api_b.call("post", f"/tables/{other['id']}/fields", {"name": "L", "type": "relation", "config": {"table_id": people["id"]}}, 422)


async def test_type_conversion_with_dry_run(api: Any) -> None:
    table = await api.table()
    tid = table["id"]
    name = table["fields"][0]
    for value in ["10", "2.5", "abc", "7"]:
        await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": value}}, 201)
    dry = await api.ok("patch", f"/fields/{name['id']}", {"type": "number", "dry_run": True})
    assert dry["data"]["dry_run"] is True
    assert (dry["data"]["total"], dry["data"]["convertible"], dry["data"]["unconvertible"]) == (4, 3, 1)
    assert dry["data"]["examples"] == ["abc"]
    assert (await api.ok("get", f"/fields/{name['id']}"))["data"]["type"] == "text"  # nothing changed
    await api.ok("patch", f"/fields/{name['id']}", {"type": "number"})
    agg = await api.ok("post", f"/tables/{tid}/aggregate", {"function": "sum", "field": "Name"})
    assert agg["data"]["result"] == 19.5
    # number -> select: values become options
    converted = (await api.ok("patch", f"/fields/{name['id']}", {"type": "select"}))["data"]
    labels = sorted(o["label"] for o in converted["config"]["options"])
    assert labels == ["10", "2.5", "7"]
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Name", "op": "is", "value": "7"}]})
    assert q["meta"]["total"] == 1
    # select -> text
    await api.ok("patch", f"/fields/{name['id']}", {"type": "text"})
    q = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": [{"field": "Name", "op": "is", "value": "2.5"}]})
    assert q["meta"]["total"] == 1
