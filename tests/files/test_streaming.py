"""A 200 MiB file through the local backend's signed URLs, against a gateway in its own
process: the bytes stream through, so the server's peak memory grows by a few MiB at most."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_socket

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SIZE = 200 * MIB
GROWTH_LIMIT = 8 * MIB


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to read the server's memory")
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_PORT": str(port),
           "SWITCHBOARD_LOG_LEVEL": "WARNING", "SWITCHBOARD_FILE_MAX_BYTES": str(SIZE)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    cli = [sys.executable, "-m", "app.faces.cli"]
    out = subprocess.run([*cli, "bootstrap", "--org", "S", "--email", "s@example.com", "--password", "stream password 1", "--json"],
                         env=env, cwd=ROOT, check=True, capture_output=True)
    key = json.loads(out.stdout.decode().strip().splitlines()[-1])["api_key"]
    proc = subprocess.Popen([*cli, "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", key, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=15)


async def _body(digest: "hashlib._Hash") -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (4096 // 256) * 256  # 1 MiB
    for i in range(SIZE // MIB):
        chunk = i.to_bytes(4, "big") + block[4:]
        digest.update(chunk)
        yield chunk


async def _flow(http: httpx.AsyncClient, entry: str, field: str, size: int, body: AsyncIterator[bytes] | bytes) -> tuple[str, str]:
    up = (await http.post("/api/v1/files/upload", json={"entry_id": entry, "field_id": field, "filename": "big.bin",
                                                         "content_type": "application/octet-stream", "size_bytes": size})).json()["data"]
    headers = {**up["upload_headers"], "Content-Length": str(size)}
    put = await http.put(up["upload_url"], content=body, headers=headers, timeout=120)
    assert put.status_code == 200, put.text
    confirmed = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]})
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()["data"]["download_url"], confirmed.json()["data"]["id"]


async def test_a_200_mib_file_streams_through(server: tuple[str, str, int]) -> None:
    url, key, pid = server
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        db = (await http.post("/api/v1/databases", json={"name": "Big"})).json()["data"]
        table = (await http.post(f"/api/v1/databases/{db['id']}/tables", json={"name": "T"})).json()["data"]
        field = (await http.post(f"/api/v1/tables/{table['id']}/fields", json={"name": "Blob", "type": "file"})).json()["data"]
        entry = (await http.post(f"/api/v1/tables/{table['id']}/entries", json={"values": {}})).json()["data"]
        # warm up every code path once with a small file, then measure from here
        small_url, _ = await _flow(http, entry["id"], field["id"], 3 * MIB, b"w" * (3 * MIB))
        async with http.stream("GET", small_url) as r:
            async for _ in r.aiter_bytes():
                pass
        baseline = _status(pid, "VmRSS")
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to now

        sent = hashlib.sha256()
        download_url, file_id = await _flow(http, entry["id"], field["id"], SIZE, _body(sent))
        after_upload = _status(pid, "VmHWM")
        received = hashlib.sha256()
        count = 0
        async with http.stream("GET", download_url, timeout=120) as r:
            assert r.status_code == 200 and int(r.headers["content-length"]) == SIZE
            async for chunk in r.aiter_raw():
                received.update(chunk)
                count += len(chunk)
        peak = _status(pid, "VmHWM")
    assert count == SIZE and received.hexdigest() == sent.hexdigest()
    assert after_upload - baseline < GROWTH_LIMIT, f"upload grew the server by {(after_upload - baseline) / MIB:.1f} MiB"
    assert peak - baseline < GROWTH_LIMIT, f"download grew the server by {(peak - baseline) / MIB:.1f} MiB"
