"""core.0004 (event subscriptions) on a database with API keys in it: a key that held every
scope there was keeps being its organization's admin key (it gets the two new scopes); a
key with some scopes stays as it was."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tortoise import Tortoise, connections

from app.kernel.auth import SCOPES, authenticate_token
from app.kernel.config import Settings
from app.kernel.db import init_db, migrate, close_db, tortoise_config
from app.kernel.hashing import hash_token
from app.models.core import ApiKey
from tests.test_outbox import _dollars, empty_url  # noqa: F401 - the fixture: an empty SQLite or PostgreSQL database

OLD_SCOPES = [s for s in SCOPES if not s.startswith("webhooks:")]


async def test_full_keys_keep_being_admin_keys(empty_url: str, tmp_path: Path) -> None:  # noqa: F811
    from tortoise.migrations.api import migrate as migrate_api

    config = tortoise_config(empty_url)
    await migrate_api(config=config, app_labels=["core"], target="core.0003_interactive_messages")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    q = (lambda sql: sql) if empty_url.startswith("sqlite") else _dollars
    now = datetime.now(timezone.utc)
    try:
        conn = connections.get("default")
        await conn.execute_query(
            q("INSERT INTO organizations (id, name, plan, timezone, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
            ["org_old", "Old Co", "self-hosted", "UTC", now, now],
        )
        for key_id, scopes in (("key_full", OLD_SCOPES), ("key_some", ["agents:read", "conversations:read"])):
            await conn.execute_query(
                q("INSERT INTO api_keys (id, organization_id, name, key_hash, prefix, scopes, enabled, created_at) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                [key_id, "org_old", key_id, hash_token(f"ak_{key_id}"), "ak_", json.dumps(scopes), True, now],
            )
    finally:
        await Tortoise.close_connections()

    settings = Settings(data_dir=tmp_path, database_url=empty_url)
    await migrate(settings)
    await init_db(settings)
    try:
        full = await ApiKey.get(id="key_full")
        assert full.scopes == OLD_SCOPES + ["webhooks:read", "webhooks:write"] == list(SCOPES)
        assert (await ApiKey.get(id="key_some")).scopes == ["agents:read", "conversations:read"]
        assert (await authenticate_token("ak_key_full")).is_admin
        assert not (await authenticate_token("ak_key_some")).is_admin
    finally:
        await close_db()
