"""Files as the data store sees them: what a ``file`` cell holds, which ids it may take, and
which cell owns each file.

A cell stores each file as the contract's ``file_value``:
``{"file_id", "key", "bucket", "filename", "content_type", "size", "uploaded_at"}``.
It takes confirmed, live files of the entry's organization that no other cell holds (a file
uploaded for a message, or one already in this cell). Each file belongs to one cell at most:
written into a cell it is claimed for it; taken out of it, or with its entry, field or table
deleted, it is released (a soft delete; the sweeper removes the object later)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..kernel.errors import ValidationFailed
from ..kernel.timefmt import iso
from .access import well_formed
from .models import StoredFile

__all__ = ["file_value", "confirmed", "check_owner", "Cell", "reassign", "release", "ids_in"]


def file_value(f: StoredFile) -> dict[str, Any]:
    return {
        "file_id": f.id,
        "key": f.key,
        "bucket": f.bucket,
        "filename": f.filename,
        "content_type": f.content_type,
        "size": f.size_bytes,
        "uploaded_at": iso(f.confirmed_at or f.created_at),
    }


def ids_in(value: Any) -> list[str]:
    """The file ids a stored cell holds."""
    return [item["file_id"] for item in value or () if isinstance(item, dict) and isinstance(item.get("file_id"), str)]


async def confirmed(org_id: str, ids: Iterable[str]) -> dict[str, StoredFile]:
    """The confirmed, live files of the organization among ``ids`` (malformed ids are none)."""
    wanted = list({i for i in ids if well_formed(i)})
    if not wanted:
        return {}
    rows = await StoredFile.filter(id__in=wanted, organization_id=org_id, status="confirmed", deleted_at=None)
    return {f.id: f for f in rows}


def check_owner(f: StoredFile, entry_id: str | None, field_id: str) -> str | None:
    """Why the file cannot go into this cell (None: it can); ``entry_id`` None is a new entry."""
    if f.entry_id is None or (f.entry_id == entry_id and f.field_id == field_id):
        return None
    return f"{f.id} belongs to entry {f.entry_id}: upload it again for this one"


@dataclass(frozen=True)
class Cell:
    table_id: str
    entry_id: str
    field_id: str
    before: list[str]
    after: list[str]


async def reassign(org_id: str, now: datetime, cells: Iterable[Cell]) -> None:
    """Claim the files written into each cell and release those taken out of it. A claim
    that no longer holds (the file was deleted or claimed meanwhile) is a 422, rolling the
    write back with the caller's transaction."""
    for cell in cells:
        added = [i for i in cell.after if i not in cell.before]
        removed = [i for i in cell.before if i not in cell.after]
        if added:
            await StoredFile.filter(
                id__in=added, organization_id=org_id, status="confirmed", deleted_at=None, entry_id=None
            ).update(table_id=cell.table_id, entry_id=cell.entry_id, field_id=cell.field_id)
            mine = await StoredFile.filter(
                id__in=added, organization_id=org_id, status="confirmed", deleted_at=None,
                entry_id=cell.entry_id, field_id=cell.field_id,
            ).count()
            if mine < len(added):
                raise ValidationFailed(details={cell.field_id: ["a file was deleted or taken by another entry meanwhile"]})
        if removed:
            await StoredFile.filter(
                id__in=removed, organization_id=org_id, entry_id=cell.entry_id, field_id=cell.field_id, deleted_at=None
            ).update(deleted_at=now)


async def release(
    org_id: str,
    now: datetime,
    *,
    entry_ids: Iterable[str] = (),
    field_ids: Iterable[str] = (),
    table_ids: Iterable[str] = (),
) -> int:
    """Soft-delete the files held by these entries, fields or tables."""
    total = 0
    for column, ids in (("entry_id", entry_ids), ("field_id", field_ids), ("table_id", table_ids)):
        wanted = list(ids)
        if wanted:
            total += await StoredFile.filter(
                organization_id=org_id, deleted_at=None, **{f"{column}__in": wanted}
            ).update(deleted_at=now)
    return total
