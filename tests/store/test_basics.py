from __future__ import annotations

from typing import Any


async def test_table_defaults_and_entry_roundtrip(api: Any) -> None:
    table = await api.table()
    names = [(f["name"], f["type"]) for f in table["fields"]]
    assert names == [("Name", "text"), ("Status", "select"), ("Date", "date"), ("Done", "checkbox")]
    listed = await api.ok("get", f"/tables/{table['id']}/entries")
    assert listed["meta"] == {"total": 3, "limit": 50, "offset": 0}
    assert all(e["values"] == {} for e in listed["data"])
    created = await api.ok("post", f"/tables/{table['id']}/entries", {"values": {"name": "Build", "Status": "Done"}}, 201)
    status = table["fields"][1]
    done = next(o for o in status["config"]["options"] if o["label"] == "Done")
    assert created["data"]["values"] == {table["fields"][0]["id"]: "Build", status["id"]: done["id"]}
