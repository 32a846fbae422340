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
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import urlparse, urlunparse

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app.serving.asgi import build
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
    """The Quart app as the server runs it: socket.io attached to the bus, the outbox worker
    running (``app.extensions["outbox"]``), all in this event loop."""
    quart_app = build(settings, auto_migrate=False)[1]
    async with quart_app.test_app():
        yield quart_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# ---------------------------------------------------------------- events and the outbox


Recorded = tuple[str, list[str], dict[str, Any]]


class EventRecorder:
    """Every event emitted on the bus while the test runs, in order, as (name, rooms, payload).

    It taps ``app.events.bus``, so it sees what the in-process app and a ``live_server`` in
    this process emit, with or without a socket connected.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.all: list[Recorded] = []
        self._loop = loop
        self._thread = threading.get_ident()
        self._arrived = asyncio.Event()

    def record(self, event: str, rooms: list[str], payload: Mapping[str, Any]) -> None:
        self.all.append((event, list(rooms), dict(payload)))
        if threading.get_ident() == self._thread:
            self._arrived.set()
        else:
            self._loop.call_soon_threadsafe(self._arrived.set)

    def of(self, name: str) -> list[dict[str, Any]]:
        """The payloads of every ``name`` event, in order."""
        return [payload for event, _, payload in self.all if event == name]

    def rooms_of(self, name: str) -> list[list[str]]:
        """The rooms of every ``name`` event, in order."""
        return [rooms for event, rooms, _ in self.all if event == name]

    async def wait_for(
        self, name: str, predicate: Callable[[dict[str, Any]], bool] | None = None, timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first ``name`` payload (matching ``predicate``) emitted in this test, waiting
        for it if it has not been emitted yet."""
        deadline = self._loop.time() + timeout
        seen = 0
        while True:
            for event, _, payload in self.all[seen:]:
                if event == name and (predicate is None or predicate(payload)):
                    return payload
            seen = len(self.all)
            self._arrived.clear()
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        raise AssertionError(f"no {name!r} event in {timeout} s; emitted: {[e for e, _, _ in self.all]}")


@pytest.fixture
async def events() -> AsyncIterator[EventRecorder]:
    """Records every bus event of the test: ``.all``, ``.of(name)``, ``await .wait_for(name)``."""
    from app.events import bus

    recorder = EventRecorder(asyncio.get_running_loop())
    remove = bus.tap(recorder.record)
    try:
        yield recorder
    finally:
        remove()


_UNFINISHED = ("pending", "delivering")


async def _due_items() -> list[Any]:
    """Outbox items the worker could act on now, or is acting on: every ``delivering`` item,
    and each ``pending`` one that is due, not held and first of its ordering key."""
    from app.kernel.timefmt import utcnow
    from app.models.chat import OutboxHold, OutboxItem

    unfinished = await OutboxItem.filter(status__in=_UNFINISHED).order_by("ordering_seq")
    if not unfinished:
        return []
    held = set(await OutboxHold.all().values_list("key", flat=True))
    heads: dict[str, Any] = {}
    for item in unfinished:
        heads.setdefault(item.ordering_key, item)
    now = utcnow()
    return [
        item
        for item in unfinished
        if item.status == "delivering"
        or (
            heads[item.ordering_key] is item
            and item.next_attempt_at <= now
            and (item.hold_key is None or item.hold_key not in held)
        )
    ]


DrainOutbox = Callable[..., Awaitable[list[Any]]]


@pytest.fixture
def drain_outbox() -> DrainOutbox:
    """``await drain_outbox(timeout=5)``: wake the outbox worker until it has done all it can
    do now (nothing delivering, nothing due), then return every outbox row, oldest first.

    Works with the in-process ``app`` and with ``live_server`` (same process, same database).
    A ``delivering`` item counts as work in progress, so an item left claimed by a worker that
    died (its lease not yet run out) makes this time out.
    """
    from app import outbox
    from app.models.chat import OutboxItem

    async def drain(timeout: float = 5.0) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            outbox.wake()
            due = await _due_items()
            if not due:
                return list(await OutboxItem.all().order_by("created_at", "ordering_seq", "id"))
            if loop.time() > deadline:
                described = [(i.id, i.status, i.attempts, i.last_error) for i in due]
                raise AssertionError(f"the outbox did not drain in {timeout} s: {described}")
            await asyncio.sleep(0.02)

    return drain


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


async def make_orgs() -> Orgs:
    return Orgs(a=await make_org("Acme"), b=await make_org("Globex"))


@pytest.fixture
async def orgs(app: Any) -> Orgs:
    """Two organizations, for tests that prove one never sees the other's objects."""
    return await make_orgs()


@pytest.fixture
def bearer() -> Callable[[str], dict[str, str]]:
    return lambda token: {"Authorization": f"Bearer {token}"}


async def login(client: Any, email: str, password: str) -> str:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, await response.get_data(as_text=True)
    return str((await response.get_json())["token"])


async def add_member(client: Any, org: Org, email: str, role: str = "member") -> tuple[str, str]:
    """Invite and activate a member; return (user id, session token). A pending member is
    known by its membership id; once accepted, by its user id."""
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
    session = await accepted.get_json()
    return session["user"]["id"], session["token"]


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
    """Collects every SQL statement tortoise sends (its db_client logger, at DEBUG), except
    the outbox worker's: it polls on its own schedule, beside whatever the test measures."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.queries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(("Created connection", "Closed connection")) or _in_outbox_worker():
            return
        self.queries.append(message)


def _in_outbox_worker() -> bool:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not in the event loop's thread
        return False
    return task is not None and task.get_name().startswith(("outbox-worker", "delivery-"))


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


@pytest.fixture
async def llm() -> AsyncIterator[Any]:
    """A fake LLM service speaking Anthropic's and OpenAI's streaming formats (tests/fakes/llm.py)."""
    from tests.fakes.llm import FakeLLM

    fake = await FakeLLM().start()
    try:
        yield fake
    finally:
        await fake.stop()
