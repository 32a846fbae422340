"""Shared by the benchmarks: a server in its own process, and a lean HTTP/1.1 client.

The load generator speaks raw HTTP/1.1 over keep-alive connections so that, on a small
machine, the client costs as little CPU as possible next to the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    host: str
    port: int
    api_key: str
    proc: subprocess.Popen[bytes]
    data_dir: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def pin_cpus() -> list[str]:
    """``BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1``: the server runs on the first set (as
    ``taskset -c``), this load generator on the second, so they never share a core."""
    client = os.environ.get("BENCH_CLIENT_CPUS")
    if client:
        os.sched_setaffinity(0, {int(c) for c in client.split(",")})
    server = os.environ.get("BENCH_SERVER_CPUS")
    return ["taskset", "-c", server] if server else []


def start_server(extra_env: dict[str, str] | None = None, *, data_dir: Path | None = None, api_key: str = "") -> Server:
    """Bootstrap a fresh SQLite data dir with the CLI, then `switchboard serve` it; or serve
    ``data_dir`` prepared beforehand, whose ``api_key`` the caller knows."""
    pinned = pin_cpus()
    prepared = data_dir is not None
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATA_DIR": str(data_dir),
        "SWITCHBOARD_PORT": str(port),
        "SWITCHBOARD_LOG_LEVEL": "WARNING",
        "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS": "1",
        **(extra_env or {}),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    cli = [sys.executable, "-m", "app.faces.cli"]
    if not prepared:
        out = subprocess.run(
            [*cli, "bootstrap", "--org", "Bench", "--email", "bench@example.com", "--password", "bench password 1", "--json"],
            env=env, cwd=ROOT, check=True, capture_output=True,
        )
        api_key = json.loads(out.stdout.decode().strip().splitlines()[-1])["api_key"]
    proc = subprocess.Popen([*pinned, *cli, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = Server(f"http://127.0.0.1:{port}", "127.0.0.1", port, api_key, proc, data_dir)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server exited")
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("server did not start")


class Conn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> "Conn":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        for k, v in headers.items():
            head += f"{k}: {v}\r\n"
        if body or method in ("POST", "PATCH", "PUT"):
            head += f"Content-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            lname = name.strip().lower()
            if lname == b"content-length":
                length = int(value.strip())
            elif lname == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
            return status, data
        return status, await self.reader.readexactly(length) if length else b""

    async def json(self, method: str, path: str, headers: dict[str, str], payload: Any = None) -> tuple[int, Any]:
        body = json.dumps(payload).encode() if payload is not None else b""
        hdrs = {**headers, "Content-Type": "application/json"} if payload is not None else headers
        status, data = await self.request(method, path, hdrs, body)
        return status, json.loads(data) if data else None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[k]


async def closed_loop(host: str, port: int, concurrency: int, seconds: float, make_request: Any) -> tuple[int, int, float]:
    """Run ``make_request(conn, i)`` as fast as possible; return (ok, errors, elapsed)."""
    conns = [await Conn(host, port).open() for _ in range(concurrency)]
    ok = errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        nonlocal ok, errors, counter
        while time.perf_counter() < stop_at:
            counter += 1
            if await make_request(conn, counter):
                ok += 1
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    for c in conns:
        await c.close()
    return ok, errors, elapsed
