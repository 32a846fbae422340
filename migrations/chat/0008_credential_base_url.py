from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('chat', '0007_agent_usage'), ('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Credential',
            name='base_url',
            field=fields.CharField(null=True, max_length=2048),
        ),
    ]
