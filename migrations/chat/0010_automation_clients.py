from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('chat', '0009_files_and_attachments'), ('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Agent',
            name='webhook_headers',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name='Conversation',
            name='client_id',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddConstraint(
            model_name='Conversation',
            constraint=UniqueConstraint(fields=('agent_id', 'client_id'), name=None),
        ),
    ]
