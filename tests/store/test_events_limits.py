"""Change events (one per real change, after commit) and plan limits."""

from __future__ import annotations

from typing import Any

import pytest

from app.services import accounts
from app.store import events


@pytest.fixture
def captured() -> Any:
    seen: list[events.EntryChanged] = []

    async def handler(event: events.EntryChanged) -> None:
        seen.append(event)

    events.subscribe(handler)
    yield seen
    events.unsubscribe(handler)


async def test_change_events(api: Any, captured: list[Any], orgs: Any) -> None:
    table = await api.table()
    assert [e.type for e in captured] == ["entry.created"] * 3
    captured.clear()
    name_id = table["fields"][0]["id"]
    entry = (await api.ok("post", f"/tables/{table['id']}/entries", {"values": {"Name": "a"}}, 201))["data"]
    (created,) = captured
    assert created.type == "entry.created" and created.before is None and created.after == {name_id: "a"}
    assert created.organization_id == orgs.a.id and created.entry_id == entry["id"] and created.table_id == table["id"]
    captured.clear()
    await api.ok("patch", f"/entries/{entry['id']}", {"values": {"Name": "b"}})
    (updated,) = captured
    assert updated.before == {name_id: "a"} and updated.after == {name_id: "b"} and updated.changed_fields == [name_id]
    captured.clear()
    await api.ok("patch", f"/entries/{entry['id']}", {"values": {"Name": "b"}})
    assert captured == []  # nothing changed, no event
    await api.call("patch", f"/entries/{entry['id']}", {"values": {"Done": "x"}}, 422)
    assert captured == []
    await api.call("delete", f"/entries/{entry['id']}", None, 204)
    (deleted,) = captured
    assert deleted.type == "entry.deleted" and deleted.before == {name_id: "b"} and deleted.after is None
    captured.clear()
    # a rolled-back atomic bulk emits nothing
    await api.call("post", f"/tables/{table['id']}/entries/bulk", {"atomic": True, "operations": [
        {"action": "create", "values": {"Name": "x"}}, {"action": "create", "values": {"Done": 1}}]}, 422)
    assert captured == []


async def test_plan_limits(api: Any, orgs: Any) -> None:
    await accounts.set_plan(orgs.a.id, "free")  # 2 databases, 5 tables/db, 10 fields/table, 1000 entries
    table = await api.table()
    tid = table["id"]
    await api.ok("post", "/databases", {"name": "second"}, 201)
    _, err = await api.call("post", "/databases", {"name": "third"}, 402)
    assert err["error"]["code"] == "plan_limit_reached" and "Free plan" in err["error"]["message"]
    db_id = table["database_id"]
    for i in range(4):
        await api.ok("post", f"/databases/{db_id}/tables", {"name": f"t{i}"}, 201)
    await api.call("post", f"/databases/{db_id}/tables", {"name": "sixth"}, 402)
    for i in range(6):
        await api.ok("post", f"/tables/{tid}/fields", {"name": f"f{i}", "type": "text"}, 201)
    await api.call("post", f"/tables/{tid}/fields", {"name": "eleventh", "type": "text"}, 402)
    # 5 tables x 3 default entries exist; fill up to 1000 through bulk
    total = (await api.ok("post", f"/tables/{tid}/aggregate", {"function": "count"}))["data"]["result"]
    assert total == 3
    existing = 15
    while existing < 1000:
        n = min(100, 1000 - existing)
        await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}] * n})
        existing += n
    _, err = await api.call("post", f"/tables/{tid}/entries", {"values": {}}, 402)
    assert err["error"]["code"] == "plan_limit_reached"
    _, err = await api.call("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}]}, 402)
    # deleting frees room
    some = (await api.ok("get", f"/tables/{tid}/entries?limit=1"))["data"][0]["id"]
    await api.call("delete", f"/entries/{some}", None, 204)
    await api.ok("post", f"/tables/{tid}/entries", {"values": {}}, 201)
