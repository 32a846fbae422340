"""Tortoise models of the data store (app label ``store``).

Entries keep every cell in one JSON column (``data``, keyed by field id); ``search`` holds
the text the full-text index covers. Filtering, sorting, search and aggregation are SQL over
these columns (see ``app/store/sql.py``); the ORM is used for the small objects only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from ..models.core import Organization

__all__ = ["Database", "Table", "Field", "Entry", "StoredFile"]


class Database(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="store_databases", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    color = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "store_databases"


class Table(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="store_tables", on_delete=fields.CASCADE
    )
    database: fields.ForeignKeyRelation[Database] = fields.ForeignKeyField(
        "store.Database", related_name="tables", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    position = fields.IntField(default=0)
    # Organization-local day on which TODAY()/NOW() formulas were last materialized.
    computed_day = fields.CharField(max_length=10, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "store_tables"


class Field(Model):
    id = fields.CharField(max_length=32, primary_key=True)
    table: fields.ForeignKeyRelation[Table] = fields.ForeignKeyField(
        "store.Table", related_name="columns", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    type = fields.CharField(max_length=32)
    config: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    position = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)

    # Not stored: why a computed field's config no longer resolves (a deleted relation,
    # linked table or target field, an unknown reference), set by ``mark_config_errors``.
    config_error: str | None = None

    class Meta:
        table = "store_fields"


class Entry(Model):
    # Integer key: keyset pagination and the full-text index use it; clients see display_id.
    id = fields.BigIntField(primary_key=True)
    display_id = fields.CharField(max_length=32, unique=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="store_entries", on_delete=fields.CASCADE, db_index=False
    )
    table: fields.ForeignKeyRelation[Table] = fields.ForeignKeyField(
        "store.Table", related_name="entries", on_delete=fields.CASCADE, db_index=False
    )
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    search = fields.TextField(null=True)
    notes: fields.Field[dict[str, Any] | None] = fields.JSONField(null=True)
    created_by = fields.CharField(max_length=32, null=True)
    last_edited_by = fields.CharField(max_length=32, null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "store_entries"


class StoredFile(Model):
    """An uploaded object.

    pending: the upload URL is out; its bytes land at upload_key. confirmed: they were moved
    to key (one key per confirm, so a late PUT to the upload URL can never replace them).
    expired: never confirmed, waiting for the sweeper. A deleted file keeps its row
    (deleted_at) until the sweeper removes its objects after the retention period."""

    id = fields.CharField(max_length=32, primary_key=True)
    organization: fields.ForeignKeyRelation[Organization] = fields.ForeignKeyField(
        "core.Organization", related_name="store_files", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=1024, null=True)
    upload_key = fields.CharField(max_length=1024)
    bucket = fields.CharField(max_length=255)
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255)
    # Declared at upload (the most the PUT may write); the stored object's size once confirmed.
    size_bytes = fields.BigIntField()
    status = fields.CharField(max_length=16, default="pending")  # pending | confirmed | expired
    # The one cell holding it (display ids); none for a message attachment.
    table_id = fields.CharField(max_length=32, null=True)
    entry_id = fields.CharField(max_length=32, null=True)
    field_id = fields.CharField(max_length=32, null=True)
    upload_token_hash = fields.CharField(max_length=64, null=True, unique=True)
    # Until then the upload URL works; after it, whatever sits at upload_key is swept.
    upload_expires_at = fields.DatetimeField(null=True)
    created_by = fields.CharField(max_length=32, null=True)
    confirmed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    deleted_at = fields.DatetimeField(null=True)
    retry_at = fields.DatetimeField(null=True)  # the sweeper failed on it: not before then

    class Meta:
        table = "store_files"
        indexes = (
            ("organization_id", "deleted_at", "created_at"),
            ("upload_expires_at",),
            ("deleted_at",),
            ("entry_id",),
            ("table_id",),
        )
