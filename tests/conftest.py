"""Shared fixtures.

Every database-touching test runs on SQLite and, when ``TEST_DATABASE_URL`` is set, on
PostgreSQL too: the ``db_url`` fixture is parametrized, the tests are not copied.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable
from urllib.parse import urlparse, urlunparse

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.serving.app import create_app
from app.kernel.config import Settings
from app.kernel.db import migrate

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

_state: dict[str, Any] = {}


# ---------------------------------------------------------------- databases


def _pg_admin_url() -> str:
    return TEST_DATABASE_URL


def _pg_session_url() -> str:
    """One database per test session, so concurrent runs on one server never collide."""
    if "pg_url" not in _state:
        name = f"sb_test_{os.getpid()}_{secrets.token_hex(3)}"
        parts = urlparse(TEST_DATABASE_URL)
        _state["pg_name"] = name
        _state["pg_url"] = urlunparse(parts._replace(path=f"/{name}"))
    return str(_state["pg_url"])


async def _pg_exec(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _prepare_postgres() -> str:
    url = _pg_session_url()
    if not _state.get("pg_ready"):
        await _pg_exec(_pg_admin_url(), f'CREATE DATABASE "{_state["pg_name"]}"')
        await migrate(Settings(database_url=url))
        _state["pg_ready"] = True
    else:
        await _truncate_postgres(url)
    return url


async def _truncate_postgres(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'tortoise_migrations'"
        )
        if rows:
            names = ", ".join(f'"{r["tablename"]}"' for r in rows)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


async def _prepare_sqlite(tmp_path: Path, template_dir: Path) -> str:
    template = template_dir / "template.db"
    if not template.exists():
        await migrate(Settings(data_dir=template_dir, database_url=f"sqlite://{template}"))
    target = tmp_path / "switchboard.db"
    shutil.copyfile(template, target)
    return f"sqlite://{target}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _state.get("pg_ready"):
        asyncio.run(_pg_exec(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{_state["pg_name"]}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sqlite-template")


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template_dir: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL database."""
    if request.param == "postgres" and not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    if _state.get("backend") != request.param:
        # tortoise caches SQL per connection name, not per dialect: forget it on a switch.
        EXECUTOR_CACHE.clear()
        _state["backend"] = request.param
    if request.param == "postgres":
        return await _prepare_postgres()
    return await _prepare_sqlite(tmp_path, sqlite_template_dir)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=db_url, allow_private_webhooks=True)


# ---------------------------------------------------------------- the app


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    quart_app = create_app(settings, auto_migrate=False)
    async with quart_app.test_app():
        yield quart_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@dataclass
class Org:
    """An organization seen from a test: its owner's key and helpers to act in it."""

    id: str
    name: str
    owner_id: str
    owner_email: str
    owner_password: str
    api_key: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@dataclass
class Orgs:
    a: Org
    b: Org


async def make_org(name: str) -> Org:
    from app.services import accounts

    email = f"owner-{secrets.token_hex(4)}@{name.lower()}.example"
    password = "correct horse battery"
    result = await accounts.bootstrap(name, email, password)
    return Org(
        id=result.organization.id,
        name=name,
        owner_id=result.user.id,
        owner_email=email,
        owner_password=password,
        api_key=result.api_key,
    )


@pytest.fixture
async def orgs(app: Any) -> Orgs:
    """Two organizations, for tests that prove one never sees the other's objects."""
    return Orgs(a=await make_org("Acme"), b=await make_org("Globex"))


@pytest.fixture
def bearer() -> Callable[[str], dict[str, str]]:
    return lambda token: {"Authorization": f"Bearer {token}"}


async def login(client: Any, email: str, password: str) -> str:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, await response.get_data(as_text=True)
    return str((await response.get_json())["token"])


async def add_member(client: Any, org: Org, email: str, role: str = "member") -> tuple[str, str]:
    """Invite and activate a member; return (user id, session token)."""
    response = await client.post(
        "/api/v1/organization/members", json={"email": email, "role": role}, headers=org.headers
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    body = await response.get_json()
    accepted = await client.post(
        "/api/v1/auth/accept-invite",
        json={"token": body["invite_token"], "password": "member password 1", "name": email.split("@")[0]},
    )
    assert accepted.status_code == 200, await accepted.get_data(as_text=True)
    return body["member"]["id"], (await accepted.get_json())["token"]


# ---------------------------------------------------------------- the real server


@dataclass
class LiveServer:
    url: str
    settings: Settings
    port: int


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """The real ASGI app under hypercorn on an ephemeral loopback port, in this event loop."""
    from app.serving.server import serve

    sock = free_socket()
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, sock=sock, shutdown_trigger=stop.wait, auto_migrate=False))
    await _wait_until_healthy(f"http://127.0.0.1:{port}", task)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, port=port)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
        sock.close()


async def _wait_until_healthy(url: str, task: asyncio.Task[Any]) -> None:
    import httpx

    async with httpx.AsyncClient() as http:
        for _ in range(200):
            if task.done():
                task.result()
            try:
                if (await http.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not become healthy")


class QueryLog(logging.Handler):
    """Collects every SQL statement tortoise sends (its db_client logger, at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(("Created connection", "Closed connection")):
            self.queries.append(message)


@pytest.fixture
def query_log() -> Any:
    """``with query_log() as log: ...`` then ``log.queries`` lists the statements run."""
    import contextlib

    @contextlib.contextmanager
    def capture() -> Any:
        logger = logging.getLogger("tortoise.db_client")
        handler, level = QueryLog(), logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            yield handler
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return capture


async def wait_for(predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate`` holds; fail the test if it never does."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result  # type: ignore[misc]
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
