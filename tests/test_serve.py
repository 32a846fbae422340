"""`make serve` on an empty data directory: migrates, bootstraps once, serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_socket

ROOT = Path(__file__).resolve().parent.parent


def _start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        ["make", "-s", "serve", f"PORT={port}", "HOST=127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def _read_until_listening(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
        if "Running on" in line:
            return out
    raise AssertionError(f"server did not start:\n{out}")


def _stop(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_make_serve_bootstraps_on_first_start_only(tmp_path: Path) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    data_dir = tmp_path / "data"

    proc = _start(data_dir, port)
    try:
        output = _read_until_listening(proc)
        key = re.search(r"api key:\s+(ak_\S+)", output).group(1)  # type: ignore[union-attr]
        login = re.search(r"login:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        password = re.search(r"password:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        members = httpx.get(f"{base}/api/v1/organization/members", headers={"Authorization": f"Bearer {key}"})
        assert members.status_code == 200
        assert members.json()["members"][0] == {**members.json()["members"][0], "email": login, "role": "owner"}
        session = httpx.post(f"{base}/api/v1/auth/login", json={"email": login, "password": password})
        assert session.status_code == 200
    finally:
        _stop(proc)
    assert (data_dir / "switchboard.db").exists()

    proc = _start(data_dir, port)
    try:
        output = _read_until_listening(proc)
        assert "api key:" not in output  # the secret is shown once, on the first start only
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/organization", headers={"x-api-key": key}).status_code == 200
    finally:
        _stop(proc)


_SERVE_ON_TAKEN_PORT = """
import socket, sys
from dataclasses import replace
from app.kernel.config import load_settings
from app.serving.server import run, serve

taken = socket.socket()
taken.bind(("127.0.0.1", 0))
taken.listen(1)
settings = replace(load_settings(), host="127.0.0.1", port=taken.getsockname()[1])
try:
    run(serve(settings), settings)
except OSError as exc:
    print(f"serve raised: {exc.strerror}", flush=True)
    sys.exit(3)
"""


def test_serve_that_cannot_bind_leaves_nothing_running(tmp_path: Path) -> None:
    """hypercorn binds after the app has started (and opened the database): when that fails,
    serve() raises and no connection thread keeps the process alive."""
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data")}
    env.pop("DATABASE_URL", None)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _SERVE_ON_TAKEN_PORT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the process did not end: {exc.stdout!r} {exc.stderr!r}") from None
    assert result.returncode == 3, result.stderr
    assert result.stdout == "serve raised: Address already in use\n"
