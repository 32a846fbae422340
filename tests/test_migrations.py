"""Migrations apply to an empty database, are idempotent, and match the models."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from tortoise import Tortoise, connections

from app.kernel.config import Settings
from app.kernel.db import migrate, tortoise_config

EXPECTED_TABLES = {"organizations", "users", "memberships", "sessions", "api_keys"}


async def _tables(url: str) -> set[str]:
    await Tortoise.init(config=tortoise_config(url))
    try:
        conn = connections.get("default")
        if url.startswith("sqlite"):
            _, rows = await conn.execute_query("SELECT name FROM sqlite_master WHERE type='table'")
        else:
            _, rows = await conn.execute_query("SELECT tablename AS name FROM pg_tables WHERE schemaname='public'")
        return {r["name"] for r in rows}
    finally:
        await Tortoise.close_connections()


def test_cli_migrate_on_an_empty_sqlite_database(tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path / "fresh")}
    env.pop("DATABASE_URL", None)
    for _ in range(2):  # the second run finds nothing to do
        result = subprocess.run([sys.executable, "-m", "app.faces.cli", "migrate"], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    import asyncio

    tables = asyncio.run(_tables(f"sqlite://{tmp_path / 'fresh' / 'switchboard.db'}"))
    assert EXPECTED_TABLES <= tables


async def test_migrate_on_an_empty_postgres_database() -> None:
    admin = os.environ.get("TEST_DATABASE_URL")
    if not admin:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    import asyncpg

    name = f"sb_empty_{secrets.token_hex(4)}"
    dsn = admin.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(admin)._replace(path=f"/{name}"))
    try:
        await migrate(Settings(database_url=url))
        await migrate(Settings(database_url=url))
        assert EXPECTED_TABLES <= await _tables(url)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def test_models_have_no_unmigrated_changes(tmp_path: Path) -> None:
    """makemigrations finds nothing to do: every model change has a committed migration."""
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    root = Path(__file__).resolve().parent.parent
    before = sorted(p.name for p in (root / "migrations").rglob("*.py"))
    result = subprocess.run(
        [sys.executable, "-m", "app.faces.cli", "makemigrations", "--name", "probe"],
        env=env, capture_output=True, text=True, timeout=60, cwd=root,
    )
    after = sorted(p.name for p in (root / "migrations").rglob("*.py"))
    for created in set(after) - set(before):
        next((root / "migrations").rglob(created)).unlink()
    assert result.returncode == 0, result.stderr
    assert before == after, f"models changed without a migration: {result.stdout}"
