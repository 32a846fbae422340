"""The query language: every operator, groups, errors, search, offset and keyset pages."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

FIELDS = [
    {"name": "Amount", "type": "number"},
    {"name": "Tags", "type": "multi_select", "config": {"options": [{"label": "Red"}, {"label": "Blue"}, {"label": "Green"}]}},
    {"name": "Site", "type": "url"},
    {"name": "Owner", "type": "user"},
    {"name": "Double", "type": "formula", "config": {"expression": "{Amount} * 2"}},
    {"name": "Files", "type": "file"},
]

TODAY = datetime.now(timezone.utc).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


ROWS = [
    {"Name": "alpha one", "Status": "To do", "Date": day(-3), "Done": True, "Amount": 10, "Tags": ["Red", "Blue"], "Site": "https://a.example"},
    {"Name": "beta two", "Status": "Done", "Date": day(-40), "Done": False, "Amount": 20, "Tags": ["Blue"]},
    {"Name": "gamma three", "Status": "In progress", "Date": day(5), "Amount": 30, "Tags": ["Green"], "Files": ["<a confirmed file>"]},
    {"Name": "Delta", "Date": day(20), "Amount": 5.5},
]


@pytest.fixture
async def data(api: Any, orgs: Any) -> dict[str, Any]:
    table = await api.table(fields=FIELDS)
    tid = table["id"]
    for e in (await api.ok("get", f"/tables/{tid}/entries"))["data"]:
        await api.call("delete", f"/entries/{e['id']}", None, 204)
    for row in ROWS:
        if "Files" in row:
            row = row | {"Files": [await api.file(b"x", "x.txt", "text/plain")]}
        await api.ok("post", f"/tables/{tid}/entries", {"values": row}, 201)
    await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "owned", "Owner": orgs.a.owner_id}}, 201)
    return table


async def names(api: Any, tid: str, filters: Any, **extra: Any) -> list[str]:
    body = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": filters, "sort": [{"field": "Name", "direction": "asc"}], **extra})
    name_id = None
    out = []
    for e in body["data"]:
        if name_id is None:
            t = await api.ok("get", f"/tables/{tid}")
            name_id = t["data"]["fields"][0]["id"]
        out.append(e["values"].get(name_id))
    return out


CASES = [
    ([{"field": "Name", "op": "is", "value": "beta two"}], ["beta two"]),
    ([{"field": "Name", "op": "is_not", "value": "beta two"}], ["Delta", "alpha one", "gamma three", "owned"]),
    ([{"field": "name", "op": "contains", "value": "ET"}], ["beta two"]),
    ([{"field": "Name", "op": "not_contains", "value": "a"}], ["owned"]),
    ([{"field": "Name", "op": "starts_with", "value": "gam"}], ["gamma three"]),
    ([{"field": "Name", "op": "is_any_of", "value": ["Delta", "owned"]}], ["Delta", "owned"]),
    ([{"field": "Name", "op": "is_none_of", "value": ["Delta", "owned"]}], ["alpha one", "beta two", "gamma three"]),
    ([{"field": "Amount", "op": "gt", "value": 10}], ["beta two", "gamma three"]),
    ([{"field": "Amount", "op": "gte", "value": 10}], ["alpha one", "beta two", "gamma three"]),
    ([{"field": "Amount", "op": "lt", "value": 10}], ["Delta"]),
    ([{"field": "Amount", "op": "lte", "value": 10}], ["Delta", "alpha one"]),
    ([{"field": "Amount", "op": "between", "value": [6, 20]}], ["alpha one", "beta two"]),
    ([{"field": "Amount", "op": "is", "value": 5.5}], ["Delta"]),
    ([{"field": "Amount", "op": "is_empty"}], ["owned"]),
    ([{"field": "Amount", "op": "is_not_empty"}], ["Delta", "alpha one", "beta two", "gamma three"]),
    ([{"field": "Status", "op": "is", "value": "done"}], ["beta two"]),
    ([{"field": "Status", "op": "is_not", "value": "Done"}], ["Delta", "alpha one", "gamma three", "owned"]),
    ([{"field": "Status", "op": "is_any_of", "value": ["To do", "In progress"]}], ["alpha one", "gamma three"]),
    ([{"field": "Status", "op": "is_none_of", "value": ["To do", "In progress"]}], ["Delta", "beta two", "owned"]),
    ([{"field": "Status", "op": "is_empty"}], ["Delta", "owned"]),
    ([{"field": "Tags", "op": "has_any_of", "value": ["Red", "Green"]}], ["alpha one", "gamma three"]),
    ([{"field": "Tags", "op": "has_all_of", "value": ["Red", "Blue"]}], ["alpha one"]),
    ([{"field": "Tags", "op": "has_none_of", "value": ["Blue"]}], ["Delta", "gamma three", "owned"]),
    ([{"field": "Tags", "op": "is_not_empty"}], ["alpha one", "beta two", "gamma three"]),
    ([{"field": "Done", "op": "is", "value": True}], ["alpha one"]),
    ([{"field": "Done", "op": "is", "value": False}], ["Delta", "beta two", "gamma three", "owned"]),
    ([{"field": "Done", "op": "is_not", "value": True}], ["Delta", "beta two", "gamma three", "owned"]),
    ([{"field": "Date", "op": "is", "value": day(-3)}], ["alpha one"]),
    ([{"field": "Date", "op": "is_not", "value": day(-3)}], ["Delta", "beta two", "gamma three", "owned"]),
    ([{"field": "Date", "op": "before", "value": day(-3)}], ["beta two"]),
    ([{"field": "Date", "op": "on_or_before", "value": day(-3)}], ["alpha one", "beta two"]),
    ([{"field": "Date", "op": "after", "value": day(5)}], ["Delta"]),
    ([{"field": "Date", "op": "on_or_after", "value": day(5)}], ["Delta", "gamma three"]),
    ([{"field": "Date", "op": "between", "value": [day(-40), day(-3)]}], ["alpha one", "beta two"]),
    ([{"field": "Date", "op": "within", "value": "past_week"}], ["alpha one"]),
    ([{"field": "Date", "op": "within", "value": "past_month"}], ["alpha one"]),
    ([{"field": "Date", "op": "within", "value": "past_year"}], ["alpha one", "beta two"]),
    ([{"field": "Date", "op": "within", "value": "next_week"}], ["gamma three"]),
    ([{"field": "Date", "op": "within", "value": "next_month"}], ["Delta", "gamma three"]),
    ([{"field": "Date", "op": "within", "value": {"period": "next_n_days", "days": 4}}], []),
    ([{"field": "Date", "op": "within", "value": {"period": "past_n_days", "days": 45}}], ["alpha one", "beta two"]),
    ([{"field": "Date", "op": "is_empty"}], ["owned"]),
    ([{"field": "Site", "op": "starts_with", "value": "https://a"}], ["alpha one"]),
    ([{"field": "Owner", "op": "is_not_empty"}], ["owned"]),
    ([{"field": "Files", "op": "is_not_empty"}], ["gamma three"]),
    ([{"field": "Double", "op": "gt", "value": 20}], ["beta two", "gamma three"]),
    ([{"field": "Double", "op": "is", "value": 11}], ["Delta"]),
    ([{"or": [{"field": "Amount", "op": "lt", "value": 6}, {"and": [{"field": "Done", "op": "is", "value": True}, {"field": "Tags", "op": "has_any_of", "value": ["Red"]}]}]}], ["Delta", "alpha one"]),
    ({"and": [{"field": "Amount", "op": "gte", "value": 10}, {"field": "Status", "op": "is_not", "value": "Done"}]}, ["alpha one", "gamma three"]),
    ([{"field": "Amount", "op": "gt", "value": 5}, {"field": "Amount", "op": "lt", "value": 20}], ["Delta", "alpha one"]),
]


async def test_every_operator(api: Any, data: dict[str, Any], orgs: Any) -> None:
    tid = data["id"]
    for filters, expected in CASES:
        assert await names(api, tid, filters) == expected, filters
    owner = await names(api, tid, [{"field": "Owner", "op": "is", "value": orgs.a.owner_id}])
    assert owner == ["owned"]


async def test_query_errors(api: Any, data: dict[str, Any]) -> None:
    tid = data["id"]
    url = f"/tables/{tid}/entries/query"
    _, body = await api.call("post", url, {"filters": [{"field": "Amount", "op": "contains", "value": "1"}]}, 422)
    assert body["error"]["code"] == "invalid_filter" and "gt" in body["error"]["details"]["allowed"]
    _, body = await api.call("post", url, {"filters": [{"field": "Done", "op": "gt", "value": 1}]}, 422)
    assert body["error"]["code"] == "invalid_filter"
    _, body = await api.call("post", url, {"filters": [{"field": "Amount", "op": "gt", "value": "many"}]}, 422)
    assert body["error"]["code"] == "invalid_filter"
    _, body = await api.call("post", url, {"filters": [{"field": "Status", "op": "is", "value": "Nope"}]}, 422)
    assert body["error"]["code"] == "invalid_filter"
    _, body = await api.call("post", url, {"filters": [{"field": "Amont", "op": "gt", "value": 1}]}, 422)
    assert body["error"]["code"] == "field_not_found" and body["error"]["details"]["suggestions"] == ["Amount"]
    _, body = await api.call("post", url, {"filters": [{"field": "Amount", "op": "bogus"}]}, 422)
    assert body["error"]["code"] == "invalid_filter"
    _, body = await api.call("post", url, {"filters": [{"or": []}]}, 422)
    assert body["error"]["code"] == "invalid_filter"
    _, body = await api.call("post", url, {"sort": [{"field": "Nmae", "direction": "asc"}]}, 422)
    assert body["error"]["code"] == "invalid_sort" and body["error"]["details"]["suggestions"][0] == "Name"
    _, body = await api.call("post", url, {"sort": [{"field": "Name", "direction": "up"}]}, 422)
    assert body["error"]["code"] == "invalid_sort"
    _, body = await api.call("post", url, {"sort": [{"field": "Tags"}]}, 422)
    assert body["error"]["code"] == "invalid_sort"
    _, body = await api.call("get", f"/tables/{tid}/entries?sort=Nope:asc", None, 422)
    assert body["error"]["code"] == "invalid_sort"
    await api.call("post", url, {"limit": 201}, 422)
    await api.call("post", url, {"limit": 1001, "cursor": None}, 422)


async def test_sort_search_offset(api: Any, data: dict[str, Any]) -> None:
    tid = data["id"]
    t = (await api.ok("get", f"/tables/{tid}"))["data"]
    fid = {f["name"]: f["id"] for f in t["fields"]}
    body = await api.ok("post", f"/tables/{tid}/entries/query", {"sort": [{"field": "Amount", "direction": "desc"}], "limit": 2, "offset": 1})
    assert [e["values"][fid["Amount"]] for e in body["data"]] == [20, 10]
    assert body["meta"] == {"limit": 2, "total": 5, "offset": 1}
    body = await api.ok("get", f"/tables/{tid}/entries?sort=Double:asc&limit=2")
    assert [e["values"].get(fid["Double"]) for e in body["data"]] == [None, 11]
    body = await api.ok("get", f"/tables/{tid}/entries?sort=Status:asc")
    # select sorts by option order, empty first
    assert [e["values"].get(fid["Name"]) for e in body["data"]][2:] == ["alpha one", "gamma three", "beta two"]
    body = await api.ok("get", f"/tables/{tid}/entries?search=gam")
    assert [e["values"][fid["Name"]] for e in body["data"]] == ["gamma three"]
    body = await api.ok("post", f"/tables/{tid}/entries/query", {"search": "two beta"})
    assert body["meta"]["total"] == 1
    body = await api.ok("post", f"/tables/{tid}/entries/query", {"search": "nothing-like-this"})
    assert body["meta"]["total"] == 0
    body = await api.ok("post", f"/tables/{tid}/entries/query", {"sort": [{"field": "created_at", "direction": "desc"}], "limit": 1})
    assert body["data"][0]["values"][fid["Name"]] == "owned"


async def test_keyset_pagination_over_equal_sort_keys(api: Any) -> None:
    table = await api.table(fields=[{"name": "Group", "type": "number"}])
    tid = table["id"]
    ops = [{"action": "create", "values": {"Group": i % 3 if i % 7 else None, "Name": f"n{i}"}} for i in range(60)]
    await api.ok("post", f"/tables/{tid}/entries/bulk", {"operations": ops})
    every = {e["id"] for e in (await api.ok("get", f"/tables/{tid}/entries?limit=200"))["data"]}
    assert len(every) == 63
    for direction in ("asc", "desc"):
        for sort in ([{"field": "Group", "direction": direction}], [{"field": "Group", "direction": direction}, {"field": "Name", "direction": "asc"}], None):
            seen: list[str] = []
            cursor = None
            body = {"sort": sort, "limit": 7, "cursor": None}
            while True:
                page = await api.ok("post", f"/tables/{tid}/entries/query", {**body, "cursor": cursor})
                seen.extend(e["id"] for e in page["data"])
                cursor = page["meta"]["next_cursor"]
                if cursor is None:
                    assert page["meta"]["has_more"] is False
                    break
            assert len(seen) == len(set(seen)) == 63, (direction, sort)
            assert set(seen) == every
    # a cursor from another query is refused
    page = await api.ok("post", f"/tables/{tid}/entries/query", {"limit": 5, "cursor": None})
    _, err = await api.call("post", f"/tables/{tid}/entries/query", {"limit": 5, "cursor": page["meta"]["next_cursor"], "sort": [{"field": "Group"}]}, 422)
    assert "cursor" in err["error"]["details"]
    page = await api.ok("get", f"/tables/{tid}/entries?cursor=&limit=1000")
    assert len(page["data"]) == 63


async def test_a_query_reads_relative_dates_in_the_zone_it_names(api: Any) -> None:
    from zoneinfo import ZoneInfo

    table = await api.table(name="Zones")
    tid = table["id"]
    ahead = datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()  # UTC+14: a day ahead of UTC-11
    made = (await api.ok("post", f"/tables/{tid}/entries", {"values": {"Name": "due", "Date": ahead}}, 201))["data"]
    today = [{"field": "Date", "op": "within", "value": {"period": "next_n_days", "days": 0}}]

    async def ids(zone: str) -> list[str]:
        body = await api.ok("post", f"/tables/{tid}/entries/query", {"filters": today, "timezone": zone})
        return [e["id"] for e in body["data"]]

    assert await ids("Pacific/Kiritimati") == [made["id"]]
    assert await ids("Pacific/Pago_Pago") == []
    for bad in ("Mars/Base", "", 5):
        status, body = await api.call("post", f"/tables/{tid}/entries/query", {"filters": today, "timezone": bad})
        assert status == 422 and "timezone" in body["error"]["details"], (bad, body)
