from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('chat', '0002_generic_outbox'), ('core', '0002_invitations_and_resets')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Interaction',
            fields=[
                ('message_id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization_id', fields.CharField(max_length=32)),
                ('conversation_id', fields.CharField(max_length=32)),
                ('action_type', fields.CharField(max_length=16)),
                ('callback_url', fields.CharField(max_length=2048)),
                ('callback_id', fields.CharField(max_length=255)),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('response', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('responded_by_id', fields.CharField(null=True, max_length=32)),
                ('responded_by_email', fields.CharField(null=True, max_length=320)),
                ('responded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'interactions', 'app': 'chat', 'indexes': [Index(fields=['status', 'expires_at'])], 'pk_attr': 'message_id', 'table_description': 'The state of an interactive message: who may be called back, and the one answer.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Message',
            name='elements',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Message',
            name='kind',
            field=fields.CharField(default='text', db_default='text', max_length=16),
        ),
    ]
