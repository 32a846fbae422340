from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ActionToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('organization_id', fields.CharField(max_length=32)),
                ('user_id', fields.CharField(max_length=32)),
                ('message_id', fields.CharField(db_index=True, max_length=32)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_action_tokens', 'app': 'push', 'pk_attr': 'id', 'table_description': 'Answers one interactive message, once, from a notification (stored as a hash).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Device',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization_id', fields.CharField(max_length=32)),
                ('user_id', fields.CharField(max_length=32)),
                ('platform', fields.CharField(max_length=8)),
                ('token', fields.TextField(unique=False)),
                ('token_key', fields.CharField(unique=True, max_length=64)),
                ('p256dh', fields.CharField(null=True, max_length=255)),
                ('auth', fields.CharField(null=True, max_length=255)),
                ('bundle_id', fields.CharField(null=True, max_length=255)),
                ('environment', fields.CharField(default='production', max_length=16)),
                ('name', fields.CharField(null=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_devices', 'app': 'push', 'indexes': [Index(fields=['organization_id', 'user_id'])], 'pk_attr': 'id', 'table_description': 'A phone (an APNs device token) or a browser (a Web Push subscription). The same token'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LiveActivityToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization_id', fields.CharField(max_length=32)),
                ('user_id', fields.CharField(max_length=32)),
                ('notification_id', fields.CharField(null=True, db_index=True, max_length=32)),
                ('device_id', fields.CharField(null=True, db_index=True, max_length=32)),
                ('slot', fields.CharField(unique=True, max_length=128)),
                ('token', fields.CharField(max_length=255)),
                ('bundle_id', fields.CharField(null=True, max_length=255)),
                ('environment', fields.CharField(default='production', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'live_activity_tokens', 'app': 'push', 'indexes': [Index(fields=['organization_id', 'user_id'])], 'pk_attr': 'id', 'table_description': "An APNs token for Live Activities: a device's push-to-start token (``notification_id``"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Notification',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('organization_id', fields.CharField(max_length=32)),
                ('user_id', fields.CharField(max_length=32)),
                ('email', fields.CharField(max_length=320)),
                ('kind', fields.CharField(max_length=16)),
                ('title', fields.TextField(unique=False)),
                ('body', fields.TextField(unique=False)),
                ('priority', fields.CharField(default='normal', max_length=16)),
                ('sound', fields.CharField(null=True, max_length=255)),
                ('badge', fields.IntField(null=True)),
                ('data', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('fanout', fields.CharField(default='queued', max_length=16)),
                ('message_id', fields.CharField(null=True, max_length=32)),
                ('activity_state', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('activity_timestamp', fields.BigIntField(default=0)),
                ('ended_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_notifications', 'app': 'push', 'indexes': [Index(fields=['organization_id', 'created_at']), Index(fields=['fanout', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One push to one person (a bulk send makes one per recipient).'},
            bases=['Model'],
        ),
    ]
