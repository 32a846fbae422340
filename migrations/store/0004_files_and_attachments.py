from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('core', '0001_initial'), ('core', '0002_invitations_and_resets'), ('core', '0003_interactive_messages'), ('store', '0003_fts_batch_fill')]

    initial = False

    operations = [
        ops.CreateModel(
            name='StoredFile',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='store_files', on_delete=OnDelete.CASCADE)),
                ('key', fields.CharField(null=True, max_length=1024)),
                ('upload_key', fields.CharField(max_length=1024)),
                ('bucket', fields.CharField(max_length=255)),
                ('filename', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(max_length=255)),
                ('size_bytes', fields.BigIntField()),
                ('status', fields.CharField(default='pending', max_length=16)),
                ('table_id', fields.CharField(null=True, max_length=32)),
                ('entry_id', fields.CharField(null=True, max_length=32)),
                ('field_id', fields.CharField(null=True, max_length=32)),
                ('upload_token_hash', fields.CharField(null=True, unique=True, max_length=64)),
                ('upload_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('retry_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'store_files', 'app': 'store', 'indexes': [Index(fields=['organization_id', 'deleted_at', 'created_at']), Index(fields=['upload_expires_at']), Index(fields=['deleted_at']), Index(fields=['entry_id']), Index(fields=['table_id'])], 'pk_attr': 'id', 'table_description': 'An uploaded object.'},
            bases=['Model'],
        ),
    ]
