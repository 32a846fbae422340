"""The files migrations (store.0004, chat.0009) on a database with data in it: messages and
entries written before them, including a file cell in the old free-form shape, read and
update as before, and the new file flow works on the upgraded database."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from tortoise import Tortoise, connections

from app import storage
from app.kernel.auth import SCOPES
from app.kernel.config import Settings
from app.kernel.db import migrate, tortoise_config
from app.models.core import Organization
from app.serving.asgi import build
from app.services import api_keys
from app.store.models import StoredFile
from tests.test_outbox import _dollars, empty_url  # noqa: F401 - the fixture: an empty SQLite or PostgreSQL database

LEGACY_FILE = [{"id": "f1", "filename": "old.pdf", "content_type": "application/pdf", "size_bytes": 3}]


async def _before_files(url: str) -> None:
    from tortoise.migrations.api import migrate as migrate_api

    config = tortoise_config(url)
    for labels, target in (
        (["core"], "core"),
        (["core", "chat"], "chat.0008_credential_base_url"),
        (["core", "chat", "push"], "push"),
        (["core", "store"], "store.0003_fts_batch_fill"),
    ):
        await migrate_api(config=config, app_labels=labels, target=target)
        await Tortoise.close_connections()


async def _seed(url: str) -> None:
    await Tortoise.init(config=tortoise_config(url))
    conn = connections.get("default")
    q = (lambda sql: sql) if url.startswith("sqlite") else _dollars
    now = datetime.now(timezone.utc)
    rows = [
        ("INSERT INTO organizations (id, name, plan, timezone, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
         ["org_old", "Old Co", "self-hosted", "UTC", now, now]),
        ("INSERT INTO users (id, email, email_key, name, created_at) VALUES (?, ?, ?, ?, ?)",
         ["usr_old", "old@old.example", "old@old.example", "Old", now]),
        ("INSERT INTO memberships (organization_id, user_id, role, status, created_at) VALUES (?, ?, ?, ?, ?)",
         ["org_old", "usr_old", "owner", "active", now]),
        ("INSERT INTO agents (id, organization_id, name, protocol, webhook_url, test_mode, enabled, config, signing_secret, "
         "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         ["agt_old", "org_old", "Old bot", "webhook", "http://127.0.0.1:9/hook", False, True, "{}", "whsec_old", now, now]),
        ("INSERT INTO conversations (id, organization_id, agent_id, user_id, title, status, last_seq, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ["conv_old", "org_old", "agt_old", "usr_old", "", "active", 1, now, now]),
        ("INSERT INTO messages (id, conversation_id, seq, role, content, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
         ["msg_old", "conv_old", 1, "user", "sent before files", "usr_old", now]),
        ("INSERT INTO store_databases (id, organization_id, name, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
         ["db_old", "org_old", "Old", "", now, now]),
        ("INSERT INTO store_tables (id, organization_id, database_id, name, position, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)", ["tb_old", "org_old", "db_old", "Docs", 0, now, now]),
        ("INSERT INTO store_fields (id, table_id, name, type, config, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
         ["fd_name", "tb_old", "Name", "text", "{}", 0, now, now]),
        ("INSERT INTO store_fields (id, table_id, name, type, config, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
         ["fd_doc", "tb_old", "Doc", "file", "{}", 1, now, now]),
        ("INSERT INTO store_entries (id, display_id, organization_id, table_id, data, search, created_at, updated_at) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
         [1, "en_old", "org_old", "tb_old", json.dumps({"fd_name": "first", "fd_doc": LEGACY_FILE}), "first", now, now]),
    ]
    if url.startswith("sqlite"):  # the entry's row in the full-text index, as the store writes it
        rows.append(("INSERT INTO store_entries_fts(rowid, search) VALUES (?, ?)", [1, "first"]))
    try:
        for sql, params in rows:
            await conn.execute_query(q(sql), params)
    finally:
        await Tortoise.close_connections()


async def test_files_upgrade_keeps_what_was_there(empty_url: str, tmp_path: Path) -> None:  # noqa: F811
    await _before_files(empty_url)
    await _seed(empty_url)
    settings = Settings(data_dir=tmp_path, database_url=empty_url)
    await migrate(settings)
    _, app = build(settings, auto_migrate=False)
    async with app.test_app():
        client = app.test_client()
        key = await api_keys.create_key_record(await Organization.get(id="org_old"), name="after", scopes=list(SCOPES), user=None)
        h = {"Authorization": f"Bearer {key}"}

        messages = (await (await client.get("/api/v1/conversations/conv_old/messages", headers=h)).get_json())["messages"]
        assert [(m["id"], m["content"]) for m in messages] == [("msg_old", "sent before files")]
        assert "attachments" not in messages[0]

        entry = (await (await client.get("/api/v1/entries/en_old", headers=h)).get_json())["data"]
        assert entry["values"] == {"fd_name": "first", "fd_doc": LEGACY_FILE}
        renamed = await client.patch("/api/v1/entries/en_old", json={"values": {"Name": "renamed"}}, headers=h)
        assert renamed.status_code == 200  # the old cell is kept as it was, not re-checked
        assert (await renamed.get_json())["data"]["values"]["fd_doc"] == LEGACY_FILE

        up = await client.post("/api/v1/files/upload", json={"entry_id": "en_old", "field_id": "fd_doc", "filename": "new.pdf",
                                                              "content_type": "application/pdf", "size_bytes": 4}, headers=h)
        assert up.status_code == 200, await up.get_data(as_text=True)
        upload = (await up.get_json())["data"]

        async def body():  # type: ignore[no-untyped-def]
            yield b"%PDF"

        await storage.current().write((await StoredFile.get(id=upload["file_id"])).upload_key, body(), 4)  # type: ignore[attr-defined]
        confirmed = await client.post("/api/v1/files/confirm", json={"upload_token": upload["upload_token"]}, headers=h)
        assert confirmed.status_code == 200, await confirmed.get_data(as_text=True)
        cell = (await (await client.get("/api/v1/entries/en_old", headers=h)).get_json())["data"]["values"]["fd_doc"]
        assert cell[0] == LEGACY_FILE[0] and cell[1]["file_id"] == upload["file_id"]  # appended after the old value
