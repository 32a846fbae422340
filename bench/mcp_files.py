"""Benchmark of the MCP server and the local file backend, against a gateway in its own process.

1. The same filtered, sorted query on a 100,000-entry table through REST
   (``POST /api/v1/tables/:id/entries/query``) and through MCP (``tools/call entry_query``
   over Streamable HTTP, JSON answers), interleaved one for one (the order alternating) on
   keep-alive connections:
   latency p50/p99 of each and MCP's overhead over REST (target: <= 2 ms).
2. Local-disk upload (PUT to the signed URL) and download throughput in MiB/s, for 1 MiB and
   100 MiB files.

    .venv/bin/python bench/mcp_files.py
    BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1 .venv/bin/python bench/mcp_files.py

Prints one line per figure. Not a test: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import Conn, percentile, start_server  # noqa: E402
from bench.store import build_table  # noqa: E402

MIB = 1024 * 1024


async def prepare(data_dir: Path, entries: int) -> tuple[str, str]:
    """A data dir holding an organization and a 100k-entry table: (api key, table id)."""
    from tortoise import Tortoise

    from app.kernel import crypto
    from app.kernel.auth import authenticate_token
    from app.kernel.config import Settings
    from app.kernel.db import init_db, migrate
    from app.services import accounts

    settings = Settings(data_dir=data_dir)
    crypto.configure(settings)
    await migrate(settings)
    await init_db(settings)
    boot = await accounts.bootstrap("Bench", f"bench-{secrets.token_hex(3)}@example.com", "bench password 123")
    principal = await authenticate_token(boot.api_key)
    schema, _, _ = await build_table(principal, "big", entries, 10_000, random.Random(7))
    await Tortoise.close_connections()
    return boot.api_key, schema.table_id


FILTERED = {
    "filters": [{"field": "Category", "op": "is", "value": "Gamma"}, {"field": "Amount", "op": "gte", "value": 2500}],
    "sort": [{"field": "Amount", "direction": "desc"}],
    "limit": 50,
}
QUERIES = {
    # keyset pages (the first page: "cursor" given, null): no total to count
    "filtered + sorted, keyset page of 50": {**FILTERED, "cursor": None},
    # offset pages also count the matching entries (meta.total)
    "filtered + sorted, offset page of 50 with total": FILTERED,
}


async def compare(host: str, port: int, key: str, table_id: str, runs: int, label: str, query: dict[str, Any]) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    rest, mcp = await Conn(host, port).open(), await Conn(host, port).open()
    rest_ms: list[float] = []
    mcp_ms: list[float] = []
    rpc = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "entry_query", "arguments": {"table_id": table_id, **query}}}
    mcp_headers = {**auth, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    same = True
    rest_path = f"/api/v1/tables/{table_id}/entries/query"

    async def via_rest() -> tuple[float, Any]:
        t = time.perf_counter()
        status, body = await rest.json("POST", rest_path, auth, query)
        assert status == 200, body
        return time.perf_counter() - t, body

    async def via_mcp(i: int) -> tuple[float, Any]:
        t = time.perf_counter()
        status, raw = await mcp.request("POST", "/mcp/v1", mcp_headers, json.dumps({**rpc, "id": i}).encode())
        assert status == 200, raw
        return time.perf_counter() - t, json.loads(raw)["result"]["structuredContent"]

    for i in range(runs + 20):  # the first 20 of each warm up; the order alternates
        if i % 2:
            (t_mcp, got), (t_rest, body) = await via_mcp(i), await via_rest()
        else:
            (t_rest, body), (t_mcp, got) = await via_rest(), await via_mcp(i)
        same = same and got == body
        if i >= 20:
            rest_ms.append(t_rest * 1000)
            mcp_ms.append(t_mcp * 1000)
    await rest.close()
    await mcp.close()
    rest_p50, rest_p99 = percentile(rest_ms, 50), percentile(rest_ms, 99)
    mcp_p50, mcp_p99 = percentile(mcp_ms, 50), percentile(mcp_ms, 99)
    print(f"entry_query, {label}: {runs} each, interleaved; MCP answers equal REST's: {same}")
    print(f"  REST  p50 {rest_p50:7.2f} ms   p99 {rest_p99:7.2f} ms")
    print(f"  MCP   p50 {mcp_p50:7.2f} ms   p99 {mcp_p99:7.2f} ms")
    paired = [m - r for m, r in zip(mcp_ms, rest_ms)]
    print(f"  MCP overhead  p50 {mcp_p50 - rest_p50:+.2f} ms   p99 {mcp_p99 - rest_p99:+.2f} ms   (target <= 2 ms)")
    print(f"  per pair (MCP minus the REST call beside it): median {percentile(paired, 50):+.2f} ms")


async def _put(url: str, size: int, content_type: str) -> float:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = (f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    block = os.urandom(MIB)
    t = time.perf_counter()
    writer.write(head)
    sent = 0
    while sent < size:
        n = min(MIB, size - sent)
        writer.write(block[:n])
        await writer.drain()
        sent += n
    status = int((await reader.readuntil(b"\r\n")).split()[1])
    elapsed = time.perf_counter() - t
    writer.close()
    assert status == 200, status
    return elapsed


async def _get(url: str, size: int) -> float:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    t = time.perf_counter()
    writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    got = 0
    while got < size:
        chunk = await reader.read(4 * MIB)
        if not chunk:
            break
        got += len(chunk)
    elapsed = time.perf_counter() - t
    writer.close()
    assert got == size, (got, size)
    return elapsed


async def throughput(host: str, port: int, key: str, size: int, count: int) -> None:
    conn = await Conn(host, port).open()
    auth = {"Authorization": f"Bearer {key}"}
    up_s: list[float] = []
    down_s: list[float] = []
    for _ in range(count):
        status, up = await conn.json("POST", "/api/v1/files/upload", auth, {
            "filename": "bench.bin", "content_type": "application/octet-stream", "size_bytes": size})
        assert status == 200, up
        up = up["data"]
        up_s.append(await _put(up["upload_url"], size, "application/octet-stream"))
        status, done = await conn.json("POST", "/api/v1/files/confirm", auth, {"upload_token": up["upload_token"]})
        assert status == 200, done
        down_s.append(await _get(done["data"]["download_url"], size))
    await conn.close()
    mib = size / MIB
    print(f"local disk, {mib:g} MiB files x {count}: upload median {mib / percentile(up_s, 50):8.1f} MiB/s, "
          f"download median {mib / percentile(down_s, 50):8.1f} MiB/s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    key, table_id = await prepare(data_dir, args.entries)
    server = start_server({"SWITCHBOARD_FILE_MAX_BYTES": str(200 * MIB)}, data_dir=data_dir, api_key=key)
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; server pid {server.proc.pid}; {args.entries:,} entries")
        for label, query in QUERIES.items():
            await compare(server.host, server.port, key, table_id, args.runs, label, query)
        await throughput(server.host, server.port, key, MIB, 50)
        await throughput(server.host, server.port, key, 100 * MIB, 5)
        print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
