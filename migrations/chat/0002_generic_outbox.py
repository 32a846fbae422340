from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

# Reviewed: the generated rename keeps every queued delivery's URL as its target; the data
# step below carries the old "disabled agent" rule (a join at claim time) over to holds.


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    await client.execute_query("UPDATE outbox SET channel = 'webhook' WHERE channel IS NULL")
    await client.execute_query(
        "UPDATE outbox SET hold_key = 'agent:' || agent_id WHERE agent_id IS NOT NULL AND hold_key IS NULL"
    )
    now = "CURRENT_TIMESTAMP"
    await client.execute_query(
        f"INSERT INTO outbox_holds (key, created_at) SELECT 'agent:' || id, {now} FROM agents WHERE NOT enabled"
    )


async def backward(apps, schema_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [('chat', '0001_initial'), ('core', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OutboxHold',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=80)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'outbox_holds', 'app': 'chat', 'pk_attr': 'key', 'table_description': 'While a row names a ``hold_key``, the outbox items carrying it wait (not claimed, no'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='OutboxItem',
            options={'table': 'outbox', 'app': 'chat', 'indexes': [Index(fields=['status', 'next_attempt_at']), Index(fields=['status', 'ordering_key', 'ordering_seq']), Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One delivery to somewhere outside: written in the transaction that caused it.'},
        ),
        ops.RenameField(
            model_name='OutboxItem',
            old_name='url',
            new_name='target',
        ),
        ops.AddField(
            model_name='OutboxItem',
            name='channel',
            field=fields.CharField(default='webhook', db_default='webhook', max_length=16),
        ),
        ops.AddField(
            model_name='OutboxItem',
            name='hold_key',
            field=fields.CharField(null=True, max_length=80),
        ),
        ops.RunPython(forward, backward, atomic=True),
    ]
