"""Store events: table and database deletes, and the two phases (in the transaction, after
the commit), including writes that roll back."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from app.kernel.errors import Conflict
from app.store import events, sql
from app.store.models import Database
from app.kernel.transactions import in_atomic

from .conftest import Api


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, bool]] = []  # (phase, event, inside a transaction)
        self.fail_on: str | None = None
        self.marker_org: str | None = None

    async def in_transaction(self, event: Any) -> None:
        self.seen.append(("in_transaction", event, in_atomic()))
        if self.marker_org is not None:  # a write of the handler's own, like an outbox row
            await Database.create(id=f"db_marker{len(self.seen)}", organization_id=self.marker_org, name="outbox marker")
        if self.fail_on is not None and event.type == self.fail_on:
            raise Conflict("the outbox refused the event")

    async def after_commit(self, event: Any) -> None:
        self.seen.append(("after_commit", event, in_atomic()))

    def of(self, phase: str) -> list[Any]:
        return [e for p, e, _ in self.seen if p == phase]


@pytest.fixture
def rec() -> Iterator[Recorder]:
    r = Recorder()
    events.subscribe(r.in_transaction, phase=events.IN_TRANSACTION)
    events.subscribe(r.after_commit, phase=events.AFTER_COMMIT)
    yield r
    events.unsubscribe(r.in_transaction)
    events.unsubscribe(r.after_commit)


async def test_table_delete_emits_table_deleted(api: Api, rec: Recorder, orgs: Any) -> None:
    table = await api.table()
    rec.seen.clear()
    await api.call("delete", f"/tables/{table['id']}", None, 204)
    for phase in ("in_transaction", "after_commit"):
        (event,) = rec.of(phase)
        assert isinstance(event, events.TableDeleted) and event.type == "table.deleted"
        assert (event.organization_id, event.database_id, event.table_id) == (orgs.a.id, table["database_id"], table["id"])
        assert event.actor_id == orgs.a.owner_id and event.occurred_at.tzinfo is not None
    assert [(p, inside) for p, _, inside in rec.seen] == [("in_transaction", True), ("after_commit", False)]


async def test_database_delete_emits_its_tables_then_itself(api: Api, rec: Recorder, orgs: Any) -> None:
    first = await api.table()
    db_id = first["database_id"]
    second = (await api.ok("post", f"/databases/{db_id}/tables", {"name": "Second"}, 201))["data"]
    gone = (await api.ok("post", f"/databases/{db_id}/tables", {"name": "Gone"}, 201))["data"]
    await api.call("delete", f"/tables/{gone['id']}", None, 204)
    rec.seen.clear()
    await api.call("delete", f"/databases/{db_id}", None, 204)
    for phase in ("in_transaction", "after_commit"):
        seen = rec.of(phase)
        assert [e.type for e in seen] == ["table.deleted", "table.deleted", "database.deleted"]
        assert {e.table_id for e in seen[:2]} == {first["id"], second["id"]}  # not the one already gone
        assert isinstance(seen[2], events.DatabaseDeleted)
        assert seen[2].database_id == db_id and sorted(seen[2].table_ids) == sorted([first["id"], second["id"]])
        assert all(e.organization_id == orgs.a.id for e in seen)


async def test_in_transaction_handlers_see_the_uncommitted_write(api: Api, rec: Recorder) -> None:
    table = await api.table()
    rows: list[Any] = []

    async def look(event: Any) -> None:
        d = sql.dialect()
        rows.extend(await sql.read(f"SELECT display_id FROM store_entries WHERE display_id = {d.p(event.entry_id)} LIMIT 1", d.params))

    events.subscribe(look, phase=events.IN_TRANSACTION)
    try:
        entry = (await api.ok("post", f"/tables/{table['id']}/entries", {"values": {"Name": "x"}}, 201))["data"]
    finally:
        events.unsubscribe(look)
    assert [r["display_id"] for r in rows] == [entry["id"]]
    assert [(p, e.type, inside) for p, e, inside in rec.seen[-2:]] == [
        ("in_transaction", "entry.created", True), ("after_commit", "entry.created", False)]


async def test_in_transaction_failure_rolls_back_table_delete(api: Api, rec: Recorder, orgs: Any) -> None:
    table = await api.table()
    rec.seen.clear()
    rec.fail_on, rec.marker_org = "table.deleted", orgs.a.id
    status, body = await api.call("delete", f"/tables/{table['id']}", None)
    assert status == 409 and body["error"]["code"] == "conflict"
    # the table, its entries and the handler's own write are all rolled back; nothing after commit
    assert (await api.ok("get", f"/tables/{table['id']}"))["data"]["id"] == table["id"]
    assert (await api.ok("get", f"/tables/{table['id']}/entries"))["meta"]["total"] == 3
    assert await Database.filter(name="outbox marker").count() == 0
    assert len(rec.of("in_transaction")) == 1 and rec.of("after_commit") == []


async def test_in_transaction_failure_rolls_back_database_delete(api: Api, rec: Recorder) -> None:
    table = await api.table()
    rec.seen.clear()
    rec.fail_on = "database.deleted"
    status, _ = await api.call("delete", f"/databases/{table['database_id']}", None)
    assert status == 409
    await api.ok("get", f"/databases/{table['database_id']}")
    await api.ok("get", f"/tables/{table['id']}")
    assert [e.type for e in rec.of("in_transaction")] == ["table.deleted", "database.deleted"]
    assert rec.of("after_commit") == []


async def test_in_transaction_failure_rolls_back_entry_writes(api: Api, rec: Recorder) -> None:
    table = await api.table()
    tid = table["id"]
    entry = (await api.ok("get", f"/tables/{tid}/entries"))["data"][0]
    rec.seen.clear()
    rec.fail_on = "entry.created"
    await api.call("post", f"/tables/{tid}/entries", {"values": {"Name": "x"}}, 409)
    await api.call("post", f"/tables/{tid}/entries/bulk", {"operations": [{"action": "create"}, {"action": "delete", "id": entry["id"]}]}, 409)
    rec.fail_on = "entry.updated"
    await api.call("patch", f"/entries/{entry['id']}", {"values": {"Name": "changed"}}, 409)
    rec.fail_on = "entry.deleted"
    await api.call("delete", f"/entries/{entry['id']}", None, 409)
    assert (await api.ok("get", f"/tables/{tid}/entries"))["meta"]["total"] == 3
    assert (await api.ok("get", f"/entries/{entry['id']}"))["data"]["values"] == {}
    assert rec.of("after_commit") == []
    # a rolled-back atomic bulk reaches neither phase
    rec.fail_on = None
    await api.call("post", f"/tables/{tid}/entries/bulk", {"atomic": True, "operations": [
        {"action": "create"}, {"action": "create", "values": {"Nope": 1}}]}, 422)
    assert len(rec.of("in_transaction")) == 4 and rec.of("after_commit") == []


async def test_after_commit_failure_keeps_the_write(api: Api, rec: Recorder) -> None:
    table = await api.table()

    async def broken(event: Any) -> None:
        raise RuntimeError("subscriber bug")

    events.subscribe(broken)
    try:
        await api.call("delete", f"/tables/{table['id']}", None, 204)
    finally:
        events.unsubscribe(broken)
    await api.call("get", f"/tables/{table['id']}", None, 404)
    assert [e.type for e in rec.of("after_commit")][-1] == "table.deleted"


def test_unknown_phase_is_refused() -> None:
    async def handler(event: Any) -> None:
        return None

    with pytest.raises(ValueError):
        events.subscribe(handler, phase="later")  # type: ignore[arg-type]
