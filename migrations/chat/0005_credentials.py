from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('chat', '0004_push_notifications'), ('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Credential',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='credentials', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('provider', fields.CharField(max_length=32)),
                ('value', fields.TextField(unique=False)),
                ('hint', fields.CharField(max_length=16)),
                ('created_by_id', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'credentials', 'app': 'chat', 'indexes': [Index(fields=['organization_id', 'created_at'])], 'pk_attr': 'id', 'table_description': "An LLM provider's API key for custom agents. The value is encrypted (bound to the"},
            bases=['Model'],
        ),
    ]
