"""Every insert path keeps the full-text index right (it is filled per batch, not by a
trigger), and entry ids sort by creation time while staying unguessable."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from app.kernel.auth import authenticate_token
from app.kernel.ids import PREFIXES, new_sortable_id, new_sortable_ids
from app.store import entries

SORTABLE = re.compile(r"^en_[0-9A-Za-z]{25}$")


def test_sortable_ids_order_by_time_and_are_unique() -> None:
    first = new_sortable_ids("entry", 2000)
    assert len(set(first)) == 2000
    assert all(SORTABLE.match(i) for i in first)
    # one batch shares the time prefix; the 17 random characters differ
    assert len({i[:11] for i in first}) == 1
    assert len({i[11:] for i in first}) == 2000
    later = new_sortable_id("entry")
    assert new_sortable_id("table").startswith(PREFIXES["table"] + "_")
    assert new_sortable_ids("entry", 0) == []
    assert all(later[:11] >= i[:11] for i in first)


async def test_search_sees_every_insert_path(api: Any, orgs: Any) -> None:
    table = await api.table("Paths")
    tid = table["id"]

    async def hits(word: str) -> set[str]:
        found: set[str] = set()
        body: dict[str, Any] = {"search": word, "limit": 1000, "cursor": None}
        while True:
            page = await api.ok("post", f"/tables/{tid}/entries/query", body)
            found.update(e["id"] for e in page["data"])
            if not page["meta"]["has_more"]:
                return found
            body["cursor"] = page["meta"]["next_cursor"]

    single = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "solo quokka"}}, 201))["data"]
    bulk = await api.ok(
        "post",
        f"/tables/{tid}/entries/bulk",
        {"operations": [
            {"action": "create", "values": {"Name": "bulk quokka one"}},
            {"action": "create", "values": {"Name": "bulk broken", "Nope": 1}},
            {"action": "create", "values": {"Name": "bulk quokka two"}},
        ]},
    )
    bulk_ids = {r["id"] for r in bulk["data"]["results"] if r["status"] == "ok"}
    assert len(bulk_ids) == 2
    principal = await authenticate_token(orgs.a.api_key)
    many = await entries.create_entries(principal, tid, [{"Name": f"many quokka {i}"} for i in range(1200)])
    assert len(many) == 1200
    assert await hits("quokka") == {single["id"], *bulk_ids, *(r.id for r in many)}
    assert await hits("broken") == set()

    # an atomic bulk that fails leaves nothing behind in the index either
    await api.call(
        "post",
        f"/tables/{tid}/entries/bulk",
        {"atomic": True, "operations": [
            {"action": "create", "values": {"Name": "ghost wombat"}},
            {"action": "create", "values": {"Nope": 1}},
        ]},
        status=422,
    )
    assert await hits("wombat") == set()
    # the next insert reuses nothing stale: it is found, and only it
    fresh = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "real wombat"}}, 201))["data"]
    assert await hits("wombat") == {fresh["id"]}

    # updates and deletes keep the index in step (their triggers)
    await api.ok("patch", f"/entries/{single['id']}", {"values": {"Name": "solo platypus"}})
    await api.ok("delete", f"/entries/{fresh['id']}", status=204)
    assert single["id"] not in await hits("quokka")
    assert await hits("platypus") == {single["id"]}
    assert await hits("wombat") == set()


async def test_entry_ids_follow_creation_order(api: Any) -> None:
    table = await api.table("Order")
    tid = table["id"]
    made = []
    for i in range(3):
        made.append((await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": f"n{i}"}}, 201))["data"]["id"])
        await asyncio.sleep(0.002)
    assert all(SORTABLE.match(i) for i in made)
    assert made == sorted(made)
