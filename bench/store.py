"""Benchmark of the data store: 1,000,000 entries built through the store API, then the
figures of issue 6 point 12, each next to its target, and hand-written SQL for comparison.

    .venv/bin/python bench/store.py                 # SQLite in a temporary directory
    .venv/bin/python bench/store.py --entries 200000
    DATABASE_URL=postgres://... .venv/bin/python bench/store.py

Prints one line per figure. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import socket
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from app.kernel.auth import authenticate_token
from app.kernel.config import Settings, load_settings
from app.kernel.db import backend_of, init_db, migrate
from app.kernel.pagination import encode_cursor
from app.services import accounts
from app.store import entries, query, structure
from app.store.query import _signature

WORDS = [f"{a}{b}" for a in ("red", "blue", "green", "amber", "violet", "cyan", "ochre", "slate", "coral", "teal")
         for b in ("fox", "owl", "elk", "yak", "emu", "koi", "ant", "bee", "cat", "dog")]  # 100 words
CATEGORIES = ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
TAGS = ["Red", "Green", "Blue", "Black", "White"]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(fn: Callable[[], Awaitable[Any]], runs: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), pct(samples, 95)


def timed_sync(fn: Callable[[], Any], runs: int, warmup: int = 2) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples), pct(samples, 95)


def line(label: str, value: str, target: str) -> None:
    print(f"{label:<58} {value:>22}   target {target}", flush=True)


def row(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "Name": f"Item {i} {rng.choice(WORDS)} {rng.choice(WORDS)}",
        "Amount": round(rng.random() * 10000, 2),
        "Category": rng.choice(CATEGORIES),
        "Date": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "Done": rng.random() < 0.3,
        "Tags": rng.sample(TAGS, rng.randint(0, 2)),
    }


async def build_table(principal: Any, name: str, n: int, chunk: int, rng: random.Random) -> tuple[Any, float, float]:
    db = await structure.create_database(principal, f"bench {name}")
    schema = await structure.create_table(principal, db.id, name)
    await structure.create_field(principal, str(schema.table.id), "Amount", "number", {"precision": 2})
    await structure.create_field(principal, str(schema.table.id), "Category", "select", {"options": CATEGORIES})
    await structure.create_field(principal, str(schema.table.id), "Tags", "multi_select", {"options": TAGS})
    await structure.create_field(principal, str(schema.table.id), "Total", "formula", {"expression": "{Amount} * 1.2"})
    tid = str(schema.table.id)
    # The rate counts the time spent inside the store call only; generating the synthetic rows
    # (the client's work) is timed apart and reported next to it.
    in_store = 0.0
    generating = 0.0
    done = 0
    while done < n:
        size = min(chunk, n - done)
        t = time.perf_counter()
        values = [row(done + i, rng) for i in range(size)]
        t2 = time.perf_counter()
        await entries.create_entries(principal, tid, values)
        in_store += time.perf_counter() - t2
        generating += t2 - t
        done += size
    return await structure.get_table_schema(principal, tid), n / in_store, n / (in_store + generating)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="entries of the unindexed-filter table")
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    base = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    settings = base.with_overrides(data_dir=tmp) if not base.database_url else base
    url = settings.effective_database_url
    backend = backend_of(url)
    print(f"backend: {backend}  ({url})", flush=True)
    await migrate(settings)
    await init_db(settings)
    boot = await accounts.bootstrap("Bench", f"bench-{secrets.token_hex(3)}@example.com", "bench password 123")
    principal = await authenticate_token(boot.api_key)
    rng = random.Random(7)

    big, rate, wall = await build_table(principal, "big", args.entries, args.chunk, rng)
    line(f"import through the store API ({args.entries:,} entries)", f"{rate:,.0f} entries/s", ">= 20,000/s")
    line("  same, counting the bench's own row generation too", f"{wall:,.0f} entries/s", "(no target)")
    small, _, _ = await build_table(principal, "small", args.small, args.chunk, rng)
    tid, sid = big.table_id, small.table_id
    f = {x.name: x.id for x in big.fields}

    # --- indexed filter + sort + limit 100
    filters = [{"field": "Category", "op": "is", "value": "Gamma"}, {"field": "Amount", "op": "gte", "value": 2500}]
    sort = [{"field": "Amount", "direction": "desc"}]

    async def filtered() -> Any:
        return await query.query_entries(principal, tid, filters=filters, sort=sort, limit=100, use_cursor=True)

    p50, p95 = await timed(filtered, args.runs)
    line("indexed filter + sort + limit 100 (p50 / p95)", f"{p50:.1f} / {p95:.1f} ms", "p95 <= 50 ms")

    async def filtered_total() -> Any:
        return await query.query_entries(principal, tid, filters=filters, sort=sort, limit=100)

    t50, t95 = await timed(filtered_total, max(5, args.runs // 3))
    line("  same, offset page with meta.total (p50 / p95)", f"{t50:.1f} / {t95:.1f} ms", "(no target)")

    # --- unindexed filter at 100,000 entries
    async def unindexed() -> Any:
        return await query.query_entries(
            principal, sid, filters=[{"field": "Name", "op": "contains", "value": "owl"}], limit=100, use_cursor=True
        )

    u50, u95 = await timed(unindexed, args.runs)
    line(f"unindexed filter (contains) at {args.small:,} entries (p50 / p95)", f"{u50:.1f} / {u95:.1f} ms", "p95 <= 150 ms")

    async def unindexed_scan() -> Any:
        return await query.query_entries(
            principal, sid, filters=[{"field": "Name", "op": "contains", "value": "no such text"}], limit=100, use_cursor=True
        )

    u50, u95 = await timed(unindexed_scan, args.runs)
    line("  same, matching nothing (a full scan) (p50 / p95)", f"{u50:.1f} / {u95:.1f} ms", "p95 <= 150 ms")

    # --- keyset page at depth 500,000
    depth = min(500_000, args.entries // 2)
    from app.store import sql as store_sql

    d = store_sql.dialect()
    jv = d.jv(f["Amount"])
    anchor = await store_sql.read(
        f"SELECT id, {jv} AS k FROM store_entries WHERE table_id = {d.p(tid)} AND deleted_at IS NULL "
        f"ORDER BY {d.asc(jv)}, id ASC LIMIT 1 OFFSET {depth - 1}",
        d.params,
        time_limit=60,
    )
    ksort = [{"field": "Amount", "direction": "asc"}]
    cursor = encode_cursor({"k": [anchor[0]["k"], int(anchor[0]["id"])], "s": _signature([tid, ksort, None, None])})

    async def keyset() -> Any:
        page = await query.query_entries(principal, tid, sort=ksort, limit=100, cursor=cursor)
        assert len(page.entries) == 100
        return page

    k50, k95 = await timed(keyset, args.runs)
    line(f"keyset page (sort Amount, 100 rows) at depth {depth:,} (p50 / p95)", f"{k50:.1f} / {k95:.1f} ms", "<= 5 ms")
    id_cursor = encode_cursor({"k": [int(anchor[0]["id"])], "s": _signature([tid, None, None, None])})

    async def keyset_id() -> Any:
        return await query.query_entries(principal, tid, limit=100, cursor=id_cursor)

    i50, i95 = await timed(keyset_id, args.runs)
    line(f"  keyset page in entry order at depth {depth:,} (p50 / p95)", f"{i50:.1f} / {i95:.1f} ms", "<= 5 ms")

    # --- aggregates
    async def total() -> Any:
        return await query.aggregate(principal, tid, "sum", "Amount")

    s50, s95 = await timed(total, max(5, args.runs // 3))
    line(f"sum over {args.entries:,} (p50 / p95)", f"{s50:.1f} / {s95:.1f} ms", "<= 250 ms")

    async def grouped() -> Any:
        return await query.aggregate(principal, tid, "sum", "Amount", group_by="Category")

    g50, g95 = await timed(grouped, max(5, args.runs // 3))
    line(f"sum group_by Category over {args.entries:,} (p50 / p95)", f"{g50:.1f} / {g95:.1f} ms", "<= 300 ms")

    # --- search
    async def search() -> Any:
        return await query.query_entries(principal, tid, search="violetkoi", limit=100, use_cursor=True)

    r50, r95 = await timed(search, args.runs)
    line("full-text search, first 100 hits (p50 / p95)", f"{r50:.1f} / {r95:.1f} ms", "<= 50 ms")

    # --- hand-written SQL for the same filter + sort and aggregate, same database, same run
    if backend == "sqlite":
        path = url.removeprefix("sqlite://")
        raw = sqlite3.connect(path)
        jc, ja = f"json_extract(data, '$.{f['Category']}')", f"json_extract(data, '$.{f['Amount']}')"
        gamma = next(o["id"] for o in next(x for x in big.fields if x.name == "Category").config["options"] if o["label"] == "Gamma")
        hand_filter = (
            "SELECT id, display_id, table_id, data, created_at, updated_at, created_by, last_edited_by FROM store_entries "
            f"WHERE table_id = ? AND deleted_at IS NULL AND {jc} = ? AND {ja} >= ? ORDER BY {ja} DESC, id DESC LIMIT 101"
        )
        hand_sum = f"SELECT SUM({ja}) FROM store_entries WHERE table_id = ? AND deleted_at IS NULL"
        h50, h95 = timed_sync(lambda: raw.execute(hand_filter, (tid, gamma, 2500)).fetchall(), args.runs)
        hs50, hs95 = timed_sync(lambda: raw.execute(hand_sum, (tid,)).fetchall(), max(5, args.runs // 3))
        raw.close()
        # the same statements through the application's own async connection (aiosqlite thread)
        conn = store_sql.connections.get("default")
        a50, a95 = await timed(lambda: conn.execute_query_dict(hand_filter, [tid, gamma, 2500]), args.runs)
        as50, as95 = await timed(lambda: conn.execute_query_dict(hand_sum, [tid]), max(5, args.runs // 3))
        line("hand SQL filter + sort + limit, sqlite3 module (p50 / p95)", f"{h50:.2f} / {h95:.2f} ms", "")
        line("hand SQL filter + sort + limit, app connection (p50 / p95)", f"{a50:.2f} / {a95:.2f} ms", "")
        line("  ratio store / hand SQL on app connection (p50, p95)", f"{p50 / a50:.2f}x, {p95 / a95:.2f}x", "<= 2x")
        line("  ratio store / hand SQL via sqlite3 module (p50, p95)", f"{p50 / h50:.2f}x, {p95 / h95:.2f}x", "<= 2x")
        line("hand SQL sum, sqlite3 module (p50 / p95)", f"{hs50:.1f} / {hs95:.1f} ms", "")
        line("hand SQL sum, app connection (p50 / p95)", f"{as50:.1f} / {as95:.1f} ms", "")
        line("  ratio store / hand SQL on app connection (p50, p95)", f"{s50 / as50:.2f}x, {s95 / as95:.2f}x", "<= 2x")
        line("  ratio store / hand SQL via sqlite3 module (p50, p95)", f"{s50 / hs50:.2f}x, {s95 / hs95:.2f}x", "<= 2x")

        # The figures above are taken minutes apart (the store's first, straight after the
        # import and index builds), so the page cache and the machine's load differ between
        # them. Here each store call is followed by the same hand SQL, so both see one state.
        async def alternated(store_fn: Callable[[], Awaitable[Any]], hand: str, params: list[Any], runs: int) -> tuple[list[float], list[float]]:
            ours: list[float] = []
            theirs: list[float] = []
            for i in range(runs + 2):
                t = time.perf_counter()
                await store_fn()
                t2 = time.perf_counter()
                await conn.execute_query_dict(hand, params)
                t3 = time.perf_counter()
                if i >= 2:
                    ours.append((t2 - t) * 1000)
                    theirs.append((t3 - t2) * 1000)
            return ours, theirs

        ours, theirs = await alternated(filtered, hand_filter, [tid, gamma, 2500], args.runs * 3)
        line(
            "filter + sort, store then hand SQL alternately (p50 / p95)",
            f"{statistics.median(ours):.2f} / {pct(ours, 95):.2f} vs {statistics.median(theirs):.2f} / {pct(theirs, 95):.2f} ms",
            "",
        )
        line(
            "  ratio store / hand SQL on app connection (p50, p95)",
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x, {pct(ours, 95) / pct(theirs, 95):.2f}x",
            "<= 2x",
        )
        ours, theirs = await alternated(total, hand_sum, [tid], max(5, args.runs // 3))
        line(
            "sum, store then hand SQL alternately (p50 / p95)",
            f"{statistics.median(ours):.1f} / {pct(ours, 95):.1f} vs {statistics.median(theirs):.1f} / {pct(theirs, 95):.1f} ms",
            "",
        )
        line(
            "  ratio store / hand SQL on app connection (p50, p95)",
            f"{statistics.median(ours) / statistics.median(theirs):.2f}x, {pct(ours, 95) / pct(theirs, 95):.2f}x",
            "<= 2x",
        )

    # --- bulk of 100 over HTTP (real hypercorn server on loopback)
    from app.serving.server import serve

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    server = asyncio.create_task(serve(settings, sock=sock, shutdown_trigger=stop.wait, auto_migrate=False))
    base_url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {boot.api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        for _ in range(100):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        counter = [0]

        async def bulk_http() -> Any:
            counter[0] += 1
            ops = [{"action": "create", "values": row(10_000_000 + counter[0] * 100 + i, rng)} for i in range(100)]
            response = await http.post(f"/api/v1/tables/{sid}/entries/bulk", json={"operations": ops})
            assert response.status_code == 200 and response.json()["data"]["succeeded"] == 100, response.text
            return response

        b50, b95 = await timed(bulk_http, args.runs)
        line("bulk of 100 creates over HTTP (p50 / p95)", f"{b50:.1f} / {b95:.1f} ms", "p95 <= 100 ms")
    stop.set()
    await server
    try:
        sock.close()
    except OSError:
        pass  # hypercorn closed the listening socket on shutdown


if __name__ == "__main__":
    asyncio.run(main())
