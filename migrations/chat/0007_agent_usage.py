from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('chat', '0006_message_status'), ('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AgentUsage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization_id', fields.CharField(max_length=32)),
                ('agent_id', fields.CharField(max_length=32)),
                ('conversation_id', fields.CharField(max_length=32)),
                ('message_id', fields.CharField(max_length=32)),
                ('provider', fields.CharField(max_length=32)),
                ('model', fields.CharField(max_length=200)),
                ('prompt_tokens', fields.IntField(default=0)),
                ('completion_tokens', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'agent_usage', 'app': 'chat', 'indexes': [Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'The tokens one custom-agent reply cost, for usage reports.'},
            bases=['Model'],
        ),
    ]
