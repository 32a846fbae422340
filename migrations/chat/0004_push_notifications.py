from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('chat', '0003_interactive_messages'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.AddField(
            model_name='OutboxItem',
            name='group_id',
            field=fields.CharField(null=True, db_index=True, max_length=32),
        ),
    ]
