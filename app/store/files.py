"""Files as the data store sees them: what a ``file`` cell holds, which ids it may hold, and
releasing a deleted entry's, field's or table's files.

A cell stores each file as the contract's ``file_value``:
``{"file_id", "key", "bucket", "filename", "content_type", "size", "uploaded_at"}``.
Only confirmed, live files of the entry's organization can be put there."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..kernel.timefmt import iso
from .models import StoredFile

__all__ = ["file_value", "confirmed", "release", "ids_in"]


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
    """The confirmed, live files of the organization among ``ids``."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await StoredFile.filter(id__in=wanted, organization_id=org_id, status="confirmed", deleted_at=None)
    return {f.id: f for f in rows}


async def release(
    org_id: str,
    now: datetime,
    *,
    entry_ids: Iterable[str] = (),
    field_ids: Iterable[str] = (),
    table_ids: Iterable[str] = (),
) -> int:
    """Soft-delete the files attached to these entries, fields or tables (their objects go
    after the retention period, like a deleted file's)."""
    total = 0
    for column, ids in (("entry_id", entry_ids), ("field_id", field_ids), ("table_id", table_ids)):
        wanted = list(ids)
        if wanted:
            total += await StoredFile.filter(
                organization_id=org_id, deleted_at=None, **{f"{column}__in": wanted}
            ).update(deleted_at=now)
    return total
