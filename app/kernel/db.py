"""Database wiring: the tortoise config, start/stop, and migrations.

Each tortoise app (``core``, and the ones later issues add) owns a models module and a
migrations package under ``migrations/``; ``APPS`` is the one list of them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

from tortoise import Tortoise, connections
from tortoise.models import Model
from tortoise.migrations.api import migrate as migrate_api

from . import sqlite_direct
from .config import Settings

__all__ = [
    "APPS", "tortoise_config", "init_db", "close_db", "migrate", "backend_of", "placeholders", "insert_sql",
    "model_from_row", "db_value", "fetch_dicts", "unindexed",
]

M = TypeVar("M", bound=Model)

# app label -> (models module, migrations package)
APPS: dict[str, tuple[str, str]] = {
    "core": ("app.models.core", "migrations.core"),
    "chat": ("app.models.chat", "migrations.chat"),
    "store": ("app.store.models", "migrations.store"),
    "push": ("app.models.push", "migrations.push"),
}


# SQLite pragmas, in this one place. WAL is tortoise's default; synchronous=NORMAL skips the
# fsync on every commit (a power loss may drop the last commits, never corrupt); a larger page
# cache and in-memory temp store keep big tables' indexes and sorts off the disk.
SQLITE_PRAGMAS = {"synchronous": "NORMAL", "cache_size": "-65536", "temp_store": "MEMORY"}


def _with_pragmas(database_url: str) -> str:
    if backend_of(database_url) != "sqlite":
        return database_url
    extra = [f"{k}={v}" for k, v in SQLITE_PRAGMAS.items() if f"{k}=" not in database_url]
    if not extra:
        return database_url
    return database_url + ("&" if "?" in database_url else "?") + "&".join(extra)


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _with_pragmas(database_url)},
        "apps": {
            label: {
                "models": [models],
                "migrations": migrations,
                "default_connection": "default",
            }
            for label, (models, migrations) in APPS.items()
        },
        "use_tz": True,
        "timezone": "UTC",
    }


@lru_cache(maxsize=1024)
def placeholders(dialect: str, sql: str) -> str:
    """Hand-written SQL uses ``?`` marks; PostgreSQL (asyncpg) wants ``$1, $2 ...``.
    Cached: the hot paths run the same few statements over and over."""
    if dialect != "postgres":
        return sql
    parts = sql.split("?")
    return "".join(p + (f"${i}" if i < len(parts) else "") for i, p in enumerate(parts, 1))


def unindexed(dialect: str, column: str) -> str:
    """``column`` as a term SQLite may not use an index for (its unary ``+``). For ``WHERE id
    IN (...) AND status IN (...)``: without table statistics SQLite picks the status index
    and scans every pending row, once per statement; the primary key is the one to use."""
    return f"+{column}" if dialect == "sqlite" else column


def insert_sql(table: str, row: dict[str, Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (...) VALUES (?, ...)`` for a column -> value dict."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    return f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values())


async def fetch_dicts(sql: str, values: list[Any]) -> list[dict[str, Any]]:
    """A hand-written hot-path read (``?`` marks): on SQLite through the loop's own connection
    when it applies (``sqlite_direct``), else through tortoise."""
    rows = await sqlite_direct.fetch_dicts(sql, values)
    if rows is None:
        conn = connections.get("default")
        rows = await conn.execute_query_dict(placeholders(conn.capabilities.dialect, sql), values)
    return rows


def model_from_row(model: type[M], row: dict[str, Any]) -> M:
    """A saved instance from a hand-written query's row (column -> raw value), each value
    converted as tortoise converts it when it reads the model itself."""
    fields = model._meta.fields_map
    return model._init_from_db(**{k: fields[k].to_python_value(v) for k, v in row.items()})


def db_value(model: type[Model], column: str, value: Any) -> Any:
    """``value`` as tortoise writes it into ``column`` (JSON text, a datetime ...)."""
    return model._meta.fields_map[column].to_db_value(value, model)


def backend_of(database_url: str) -> str:
    return "postgres" if database_url.startswith(("postgres", "asyncpg")) else "sqlite"


async def init_db(settings: Settings) -> None:
    url = settings.effective_database_url
    if backend_of(url) == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_db() -> None:
    sqlite_direct.close()
    await Tortoise.close_connections()


async def migrate(settings: Settings) -> None:
    """Apply every pending migration (idempotent)."""
    url = settings.effective_database_url
    if backend_of(url) == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate_api(config=tortoise_config(url))
    await Tortoise.close_connections()
