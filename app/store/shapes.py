"""JSON shapes of store objects as the contract shows them (shared by REST and MCP)."""

from __future__ import annotations

from typing import Any

from ..timefmt import iso
from .access import EntryRecord
from .models import Database, Field
from .schema import TableSchema

__all__ = ["database_json", "field_json", "table_json", "entry_json"]


def database_json(db: Database) -> dict[str, Any]:
    return {
        "id": db.id,
        "name": db.name,
        "description": db.description,
        "color": db.color,
        "created_at": iso(db.created_at),
        "updated_at": iso(db.updated_at),
    }


def field_json(f: Field) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "type": f.type,
        "position": f.position,
        "config": f.config or {},
        "created_at": iso(f.created_at),
    }


def table_json(schema: TableSchema) -> dict[str, Any]:
    t = schema.table
    return {
        "id": t.id,
        "database_id": t.database_id,  # type: ignore[attr-defined]
        "name": t.name,
        "position": t.position,
        "fields": [field_json(f) for f in schema.fields],
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def entry_json(schema: TableSchema, rec: EntryRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "table_id": rec.table_id,
        "values": {f.id: rec.data[f.id] for f in schema.fields if f.id in rec.data},
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
    }
