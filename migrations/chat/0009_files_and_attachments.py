from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('chat', '0008_credential_base_url'), ('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Message',
            name='attachments',
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
    ]
