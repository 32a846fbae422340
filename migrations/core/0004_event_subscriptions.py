"""Event subscriptions (organization webhooks), and the two scopes that manage them
(webhooks:read, webhooks:write) given to every API key that held all the scopes there were:
such a key is its organization's admin key and stays one."""

import json

from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

_SCOPES_BEFORE = frozenset({
    "organizations:read", "members:read", "members:write", "agents:read", "agents:write", "conversations:read",
    "conversations:write", "push:write", "data.databases:read", "data.databases:write", "data.tables:read",
    "data.tables:write", "files:read", "files:write",
})
_SCOPES_ADDED = ("webhooks:read", "webhooks:write")


async def grant_webhook_scopes(apps, schema_editor) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    _, rows = await client.execute_query("SELECT id, scopes FROM api_keys")
    for row in rows:
        scopes = row["scopes"]
        if isinstance(scopes, (str, bytes)):
            scopes = json.loads(scopes)
        if not _SCOPES_BEFORE <= set(scopes):
            continue
        added = [s for s in _SCOPES_ADDED if s not in scopes]
        if added:
            value = json.dumps(list(scopes) + added, separators=(",", ":"))
            sql = "UPDATE api_keys SET scopes = $1::jsonb WHERE id = $2" if postgres else "UPDATE api_keys SET scopes = ? WHERE id = ?"
            await client.execute_query(sql, [value, row["id"]])


async def keep_scopes(apps, schema_editor) -> None:
    """Going back leaves keys as they are: an unknown scope grants nothing."""


class Migration(migrations.Migration):
    dependencies = [('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EventSubscription',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='event_subscriptions', on_delete=OnDelete.CASCADE)),
                ('url', fields.CharField(max_length=2048)),
                ('events', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('description', fields.CharField(default='', max_length=500)),
                ('signing_secret', fields.CharField(max_length=255)),
                ('previous_signing_secret', fields.CharField(null=True, max_length=255)),
                ('previous_secret_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('enabled', fields.BooleanField(default=True)),
                ('disabled_reason', fields.CharField(null=True, max_length=255)),
                ('disabled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('failing_since', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('core.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='event_subscriptions', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'event_subscriptions', 'app': 'core', 'indexes': [Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': "An organization's webhook for events (``whk_...``): which events go to which URL,"},
            bases=['Model'],
        ),
        ops.RunPython(grant_webhook_scopes, keep_scopes, atomic=True),
    ]
