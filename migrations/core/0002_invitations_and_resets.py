from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

from app.kernel.ids import new_id

# Reviewed: memberships stored before this migration get their public id here.


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    marks = "$1" if client.capabilities.dialect == "postgres" else "?"
    second = "$2" if client.capabilities.dialect == "postgres" else "?"
    rows = await client.execute_query_dict("SELECT id FROM memberships WHERE public_id IS NULL")
    for row in rows:
        await client.execute_query(
            f"UPDATE memberships SET public_id = {marks} WHERE id = {second}", [new_id("membership"), row["id"]]
        )


async def backward(apps, schema_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [('core', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PasswordReset',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('user', fields.ForeignKeyField('core.User', source_field='user_id', db_constraint=True, to_field='id', related_name='password_resets', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'password_resets', 'app': 'core', 'pk_attr': 'id', 'table_description': "A one-time token emailed to prove the address is the reader's (stored as a hash)."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Membership',
            name='public_id',
            field=fields.CharField(null=True, unique=True, max_length=32),
        ),
        ops.AddField(
            model_name='Membership',
            name='invited_email',
            field=fields.CharField(null=True, max_length=320),
        ),
        ops.RunPython(forward, backward, atomic=True),
    ]
