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

__all__ = ["Database", "Table", "Field", "Entry"]


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
