"""Entry notes: one TipTap document per entry — get, replace, clear, append.

Documents are checked by ``app.store.notes`` (node types, marks, 50,000 characters, 1 MB).
Append is a read-modify-write inside one transaction that holds the entry: ``SELECT ... FOR
UPDATE`` on PostgreSQL, the single writer connection's transaction on SQLite — so concurrent
appends queue up and none is lost.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ..kernel.auth import Principal
from ..kernel.errors import NotFound, ValidationFailed
from ..kernel.transactions import atomic
from . import sql
from .access import fetch_entry, get_table, ts_param

__all__ = ["get_notes", "replace_notes", "append_notes"]


def _validators() -> Any:
    from . import notes

    return notes


def _loads(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return json.loads(value)
    return value


async def _locked_notes(entry_id: str, org_id: str) -> tuple[int, Any]:
    d = sql.dialect()
    lock = " FOR UPDATE" if d.name == "postgres" else ""
    rows = await sql.read(
        f"SELECT id, notes FROM store_entries WHERE display_id = {d.p(entry_id)} AND organization_id = {d.p(org_id)} "
        f"AND deleted_at IS NULL LIMIT 1{lock}",
        d.params,
    )
    if not rows:
        raise NotFound("Entry not found.")
    return int(rows[0]["id"]), _loads(rows[0]["notes"])


async def _store(pk: int, doc: Any, principal: Principal) -> None:
    d = sql.dialect()
    value = None if doc is None else json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    cast = "::jsonb" if d.name == "postgres" else ""
    who = principal.user.id if principal.user else None
    await sql.write(
        f"UPDATE store_entries SET notes = {d.p(value)}{cast}, last_edited_by = {d.p(who)}, "
        f"updated_at = {d.p(ts_param(datetime.now(timezone.utc)))} WHERE id = {d.p(pk)}",
        d.params,
    )


async def get_notes(principal: Principal, entry_id: str) -> Any:
    rec = await fetch_entry(principal, entry_id)
    await get_table(principal, rec.table_id)
    _, doc = await _locked_notes(entry_id, principal.org_id)
    return doc


async def replace_notes(principal: Principal, entry_id: str, doc: Any) -> Any:
    """Replace the document; ``None`` clears it."""
    rec = await fetch_entry(principal, entry_id, write=True)
    await get_table(principal, rec.table_id, write=True)
    if doc is not None:
        _validators().validate_document(doc)
    async with atomic():
        pk, _ = await _locked_notes(entry_id, principal.org_id)
        await _store(pk, doc, principal)
    return doc


async def append_notes(principal: Principal, entry_id: str, nodes: Any) -> Any:
    rec = await fetch_entry(principal, entry_id, write=True)
    await get_table(principal, rec.table_id, write=True)
    if not isinstance(nodes, list) or not nodes:
        raise ValidationFailed(details={"content": ["must be a non-empty list of TipTap block nodes"]})
    validators = _validators()
    validators.validate_nodes(nodes)
    async with atomic():
        pk, doc = await _locked_notes(entry_id, principal.org_id)
        if not isinstance(doc, dict) or doc.get("type") != "doc":
            doc = {"type": "doc", "content": []}
        doc = {**doc, "content": list(doc.get("content") or []) + nodes}
        validators.validate_document(doc)  # the combined document must stay within the limits
        await _store(pk, doc, principal)
    return doc
