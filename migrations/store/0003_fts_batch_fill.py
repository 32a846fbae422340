"""The full-text index is filled by the store's insert path, one statement per batch
(``app.store.access.insert_rows``), instead of a per-row AFTER INSERT trigger: FTS5 flushes
a segment at the end of every statement that writes it, so a trigger made imports slow.
Updates and deletes keep their triggers. PostgreSQL's index is an expression index: no change."""

from tortoise import migrations
from tortoise.migrations import operations as ops


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script("DROP TRIGGER IF EXISTS store_entries_fts_ai")


async def backward(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(
            "CREATE TRIGGER IF NOT EXISTS store_entries_fts_ai AFTER INSERT ON store_entries "
            "WHEN new.search IS NOT NULL BEGIN "
            "INSERT INTO store_entries_fts(rowid, search) VALUES (new.id, new.search); END"
        )


class Migration(migrations.Migration):
    dependencies = [("store", "0002_search_and_indexes")]

    operations = [ops.RunPython(forward, backward, atomic=True)]
