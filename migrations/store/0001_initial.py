from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('core', '0001_initial')]

    initial = True

    operations = [
        ops.CreateModel(
            name='Database',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='store_databases', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('description', fields.TextField(default='', unique=False)),
                ('color', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'store_databases', 'app': 'store', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Table',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='store_tables', on_delete=OnDelete.CASCADE)),
                ('database', fields.ForeignKeyField('store.Database', source_field='database_id', db_constraint=True, to_field='id', related_name='tables', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('position', fields.IntField(default=0)),
                ('computed_day', fields.CharField(null=True, max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'store_tables', 'app': 'store', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Entry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('display_id', fields.CharField(unique=True, max_length=32)),
                ('organization', fields.ForeignKeyField('core.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='store_entries', on_delete=OnDelete.CASCADE)),
                ('table', fields.ForeignKeyField('store.Table', source_field='table_id', db_constraint=True, to_field='id', related_name='entries', on_delete=OnDelete.CASCADE)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('search', fields.TextField(null=True, unique=False)),
                ('notes', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by', fields.CharField(null=True, max_length=32)),
                ('last_edited_by', fields.CharField(null=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'store_entries', 'app': 'store', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Field',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('table', fields.ForeignKeyField('store.Table', source_field='table_id', db_constraint=True, to_field='id', related_name='columns', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=200)),
                ('type', fields.CharField(max_length=32)),
                ('config', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('position', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('deleted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'store_fields', 'app': 'store', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
