"""Entry notes over REST: get, replace, clear, append, and 50 concurrent appends."""

from __future__ import annotations

import asyncio
from typing import Any


def para(text: str) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": text}]}


async def test_notes_lifecycle(api: Any) -> None:
    table = await api.table()
    eid = (await api.ok("get", f"/tables/{table['id']}/entries"))["data"][0]["id"]
    empty = await api.ok("get", f"/entries/{eid}/notes")
    assert empty["data"] == {"entry_id": eid, "notes": None, "has_notes": False}
    doc = {"type": "doc", "content": [
        {"type": "heading", "attrs": {"level": 1}, "content": [{"type": "text", "text": "Meeting Notes"}]},
        {"type": "paragraph", "content": [{"type": "text", "marks": [{"type": "bold"}], "text": "Q1"}]},
    ]}
    replaced = await api.ok("patch", f"/entries/{eid}/notes", {"notes": doc})
    assert replaced["data"]["notes"] == doc and replaced["data"]["has_notes"] is True
    assert (await api.ok("patch", f"/entries/{eid}/notes", {}))["data"]["notes"] == doc
    appended = await api.ok("post", f"/entries/{eid}/notes/append", {"content": [para("more")]})
    assert appended["data"]["notes"]["content"][-1] == para("more")
    assert len((await api.ok("get", f"/entries/{eid}/notes"))["data"]["notes"]["content"]) == 3
    _, err = await api.call("patch", f"/entries/{eid}/notes", {"notes": {"type": "doc", "content": [{"type": "table"}]}}, 422)
    assert err["error"]["code"] == "validation_failed"
    await api.call("post", f"/entries/{eid}/notes/append", {"content": [{"type": "image"}]}, 422)
    await api.call("post", f"/entries/{eid}/notes/append", {"content": []}, 422)
    big = {"type": "doc", "content": [para("x" * 50_001)]}
    await api.call("patch", f"/entries/{eid}/notes", {"notes": big}, 422)
    # appending past the limit is refused and leaves the notes as they were
    await api.ok("patch", f"/entries/{eid}/notes", {"notes": {"type": "doc", "content": [para("y" * 49_990)]}})
    await api.call("post", f"/entries/{eid}/notes/append", {"content": [para("z" * 20)]}, 422)
    cleared = await api.ok("patch", f"/entries/{eid}/notes", {"notes": None})
    assert cleared["data"] == {"entry_id": eid, "notes": None, "has_notes": False}
    # appending to no notes creates a document
    created = await api.ok("post", f"/entries/{eid}/notes/append", {"content": [para("first")]})
    assert created["data"]["notes"] == {"type": "doc", "content": [para("first")]}
    await api.call("get", "/entries/en_nope/notes", None, 404)


async def test_fifty_concurrent_appends(api: Any) -> None:
    table = await api.table()
    eid = (await api.ok("get", f"/tables/{table['id']}/entries"))["data"][0]["id"]
    results = await asyncio.gather(
        *(api.call("post", f"/entries/{eid}/notes/append", {"content": [para(f"line {i}")]}) for i in range(50))
    )
    assert all(status == 200 for status, _ in results)
    notes = (await api.ok("get", f"/entries/{eid}/notes"))["data"]["notes"]
    texts = sorted(node["content"][0]["text"] for node in notes["content"])
    assert texts == sorted(f"line {i}" for i in range(50))
