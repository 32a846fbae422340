"""Queries compiled against the schema a process last loaded: used only while that schema is
current and the caller may see the table."""

from __future__ import annotations

from typing import Any

from app.store import query, sql


async def _query(api: Any, tid: str, body: dict[str, Any], status: int = 200) -> Any:
    return await api.ok("post", f"/tables/{tid}/entries/query", body, status)


async def test_cached_schema_follows_field_changes(api: Any) -> None:
    table = await api.table(fields=[{"name": "Amount", "type": "number"}])
    tid = table["id"]
    await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "a", "Amount": 3}}, 201)
    body = {"filters": [{"field": "Amount", "op": "gte", "value": 1}], "sort": [{"field": "Amount", "direction": "desc"}], "cursor": None}
    assert len((await _query(api, tid, body))["data"]) == 1
    assert len((await _query(api, tid, body))["data"]) == 1  # the cached schema answers
    # a field added after the schema was cached is found, one removed is not
    await api.ok("post", f"/tables/{tid}/fields", {"name": "Score", "type": "number"}, 201)
    await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "b", "Score": 7}}, 201)
    page = await _query(api, tid, {"filters": [{"field": "Score", "op": "is", "value": 7}], "cursor": None})
    assert [e["values"] for e in page["data"]][0].get(table["fields"][0]["id"]) == "b"
    amount = next(f for f in (await api.ok("get", f"/tables/{tid}"))["data"]["fields"] if f["name"] == "Amount")
    await api.call("delete", f"/fields/{amount['id']}", None, 204)
    _, err = await api.call("post", f"/tables/{tid}/entries/query", body, 422)
    assert err["error"]["code"] == "field_not_found"


async def test_cached_schema_respects_deletion_and_organizations(api: Any, api_b: Any) -> None:
    table = await api.table()
    tid = table["id"]
    body = {"sort": [{"field": "Name", "direction": "asc"}], "limit": 2}
    first = await _query(api, tid, body)
    assert first["meta"]["total"] == 3 and len(first["data"]) == 2
    assert (await _query(api, tid, body)) == first
    # another organization never sees it, cached schema or not
    _, err = await api_b.call("post", f"/tables/{tid}/entries/query", body, 404)
    assert err["error"]["code"] == "not_found"
    await api.call("delete", f"/tables/{tid}", None, 204)
    await api.call("post", f"/tables/{tid}/entries/query", body, 404)


async def test_cached_path_is_taken(api: Any, monkeypatch: Any) -> None:
    table = await api.table()
    tid = table["id"]
    body = {"sort": [{"field": "Name", "direction": "asc"}], "cursor": None}
    await _query(api, tid, body)
    answered: list[bool] = []
    original = query._query_cached

    async def spy(*args: Any, **kwargs: Any) -> Any:
        page = await original(*args, **kwargs)
        answered.append(page is not None)
        return page

    monkeypatch.setattr(query, "_query_cached", spy)
    await _query(api, tid, body)
    assert answered == [sql.backend() == "sqlite"]  # PostgreSQL takes the ordinary path


async def test_reads_in_one_hand_off_keep_their_time_limit(api: Any) -> None:
    from app.kernel.errors import BadRequest

    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT MAX(x) AS n FROM c"
    first, second = await sql.read_many([("SELECT 1 AS n", []), ("SELECT 2 AS n", [])])
    assert first == [{"n": 1}] and second == [{"n": 2}]
    try:
        await sql.read_many([("SELECT 1 AS n", []), (slow, [])], time_limit=0.2)
    except BadRequest as exc:
        assert exc.code == "query_timeout"
    else:  # pragma: no cover
        raise AssertionError("the slow read was not stopped")
