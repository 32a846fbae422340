from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('core', '0002_invitations_and_resets')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Organization',
            name='callback_secret',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='Organization',
            name='previous_callback_secret',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.AddField(
            model_name='Organization',
            name='previous_callback_secret_expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
