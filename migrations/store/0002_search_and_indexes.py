"""Indexes the model layer cannot express: partial indexes over live entries and the
full-text index (an FTS5 external-content table on SQLite, a GIN tsvector index on
PostgreSQL). Per-field expression indexes are created on demand by ``app.store.sql``."""

from tortoise import migrations
from tortoise.migrations import operations as ops

_SQLITE = [
    "CREATE INDEX IF NOT EXISTS store_entries_live ON store_entries (table_id, id) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS store_entries_org_live ON store_entries (organization_id) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS store_fields_table ON store_fields (table_id, position)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS store_entries_fts USING fts5("
    "search, content='store_entries', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS store_entries_fts_ai AFTER INSERT ON store_entries "
    "WHEN new.search IS NOT NULL BEGIN "
    "INSERT INTO store_entries_fts(rowid, search) VALUES (new.id, new.search); END",
    "CREATE TRIGGER IF NOT EXISTS store_entries_fts_ad AFTER DELETE ON store_entries "
    "WHEN old.search IS NOT NULL BEGIN "
    "INSERT INTO store_entries_fts(store_entries_fts, rowid, search) VALUES ('delete', old.id, old.search); END",
    "CREATE TRIGGER IF NOT EXISTS store_entries_fts_au AFTER UPDATE OF search ON store_entries BEGIN "
    "INSERT INTO store_entries_fts(store_entries_fts, rowid, search) "
    "SELECT 'delete', old.id, old.search WHERE old.search IS NOT NULL; "
    "INSERT INTO store_entries_fts(rowid, search) SELECT new.id, new.search WHERE new.search IS NOT NULL; END",
]

_POSTGRES = [
    "CREATE INDEX IF NOT EXISTS store_entries_live ON store_entries (table_id, id) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS store_entries_org_live ON store_entries (organization_id) WHERE deleted_at IS NULL",
    "CREATE INDEX IF NOT EXISTS store_fields_table ON store_fields (table_id, position)",
    "CREATE INDEX IF NOT EXISTS store_entries_search ON store_entries "
    "USING GIN (to_tsvector('simple', coalesce(search, '')))",
]


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    statements = _POSTGRES if client.capabilities.dialect == "postgres" else _SQLITE
    for sql in statements:
        await client.execute_script(sql)


class Migration(migrations.Migration):
    dependencies = [("store", "0001_initial")]

    operations = [ops.RunPython(forward, atomic=True)]
