"""Files: the presigned upload flow, listing, downloads, deletes, message attachments and
the sweeper that removes objects nobody will ask for again.

    upload   a pending row and a URL the client PUTs the bytes to (one hour by default)
    confirm  the object exists and is within 10 % of the declared size: the file is recorded
             and, when an entry and field were named, attached to that entry's file field
    delete   a soft delete; the sweeper removes the object after the retention period

A file named with no entry and field is a message attachment: any member who may write in
conversations may upload one. Upload tokens are stored hashed and work only for the
organization that asked for them."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.functions import Sum

from .. import storage
from ..kernel.auth import Principal, require_scope
from ..kernel.config import Settings
from ..kernel.errors import Conflict, NotFound, SwitchboardError, ValidationFailed
from ..kernel.hashing import hash_token
from ..kernel.ids import new_id
from ..kernel.plans import enforce_limit
from ..kernel.recurring import Recurring
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..store import entries
from ..store.access import fetch_entry, get_field, well_formed
from ..store.files import file_value
from ..store.models import StoredFile

__all__ = [
    "configure", "base_url", "Upload", "request_upload", "confirm", "list_files", "get_file", "download_url",
    "delete_file", "Attached", "attach", "sign_attachments", "sweep", "Sweeper", "DOWNLOAD_TTL", "MAX_PAGE", "UploadExpired",
    "file_value",
]

log = logging.getLogger("switchboard.files")

DOWNLOAD_TTL = 3600  # the contract: download URLs last an hour
MAX_PAGE = 200
SIZE_TOLERANCE = 0.10  # the contract: a confirmed object may differ from the declared size by 10 %
MAX_ATTACHMENTS = 20
TOKEN_PREFIX = "upl"
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")

_settings = Settings()


class UploadExpired(SwitchboardError):
    status, code, message = 410, "upload_expired", "This upload token has expired; request a new upload."


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def base_url(request_base: str | None = None) -> str:
    """Where the gateway's own file URLs point: the public URL, else the request's host."""
    return (_settings.public_url or request_base or f"http://{_settings.host}:{_settings.port}").rstrip("/")


# ---------------------------------------------------------------- checks


def _check_upload(filename: Any, content_type: Any, size_bytes: Any) -> tuple[str, str, int]:
    problems: dict[str, list[str]] = {}
    name = filename.strip() if isinstance(filename, str) else ""
    if not name:
        problems["filename"] = ["is required: the file's name with its extension"]
    elif len(name) > 255 or any(c in name for c in "/\\\x00") or any(unicodedata.category(c) == "Cc" for c in name):
        problems["filename"] = ["must be at most 255 characters, without slashes or control characters"]
    ctype = content_type.strip().lower() if isinstance(content_type, str) else ""
    if not _MIME.match(ctype):
        problems["content_type"] = ["must be a MIME type such as application/pdf"]
    elif _settings.file_types and not any(_type_matches(ctype, allowed) for allowed in _settings.file_types):
        problems["content_type"] = [f"is not allowed here; allowed: {', '.join(_settings.file_types)}"]
    size = size_bytes if isinstance(size_bytes, int) and not isinstance(size_bytes, bool) else -1
    if size < 0:
        problems["size_bytes"] = ["must be a non-negative integer"]
    elif size > _settings.file_max_bytes:
        problems["size_bytes"] = [f"must be at most {_settings.file_max_bytes} bytes"]
    if problems:
        raise ValidationFailed(details=problems)
    return name, ctype, size


def _type_matches(ctype: str, allowed: str) -> bool:
    if allowed.endswith("/*"):
        return ctype.startswith(allowed[:-1])
    return ctype == allowed


def _key(org_id: str, file_id: str, filename: str) -> str:
    # The object's name keeps the extension readable; the id keeps it unique.
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "file"
    return f"{org_id}/files/{file_id}/{safe[-120:]}"


async def _stored_bytes(org_id: str) -> int:
    row = await StoredFile.filter(organization_id=org_id, deleted_at=None).annotate(total=Sum("size_bytes")).first().values("total")
    return int((row or {}).get("total") or 0)


# ---------------------------------------------------------------- upload and confirm


@dataclass
class Upload:
    url: str
    token: str
    headers: dict[str, str]
    expires_in: int
    file: StoredFile


async def request_upload(
    principal: Principal,
    *,
    entry_id: Any,
    field_id: Any,
    filename: Any,
    content_type: Any,
    size_bytes: Any,
    request_base: str | None = None,
) -> Upload:
    """Check the request, reserve the file, and sign the URL the bytes go to."""
    table_id = None
    if entry_id is None and field_id is None:
        require_scope(principal, "conversations:write")  # a message attachment
    else:
        require_scope(principal, "files:write")
        require_scope(principal, "data.tables:write")
        if not isinstance(entry_id, str) or not isinstance(field_id, str):
            raise ValidationFailed(
                details={k: ["must be a string id"] for k, v in (("entry_id", entry_id), ("field_id", field_id)) if not isinstance(v, str)}
            )
        rec = await fetch_entry(principal, entry_id, write=True)
        table, field = await get_field(principal, field_id, write=True)
        if str(table.id) != rec.table_id or field.type != "file":
            raise ValidationFailed(details={"field_id": ["must be a file field of the entry's table"]})
        entry_id, field_id, table_id = rec.id, field.id, rec.table_id
    name, ctype, size = _check_upload(filename, content_type, size_bytes)
    await enforce_limit(principal.organization.plan, "storage_bytes", lambda: _stored_bytes(principal.org_id), size)
    store = storage.current()
    file_id = new_id("file")
    key = _key(principal.org_id, file_id, name)
    ttl = _settings.upload_ttl_seconds
    url, headers = await store.upload_url(key, content_type=ctype, size=size, expires_in=ttl, base_url=base_url(request_base))
    token = f"{TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    f = await StoredFile.create(
        id=file_id,
        organization_id=principal.org_id,
        key=key,
        bucket=store.bucket,
        filename=name,
        content_type=ctype,
        size_bytes=size,
        table_id=table_id,
        entry_id=entry_id,
        field_id=field_id,
        upload_token_hash=hash_token(token),
        upload_expires_at=utcnow() + timedelta(seconds=ttl),
        created_by=principal.user.id if principal.user else None,
    )
    Sweeper.nudge()
    return Upload(url, token, headers, ttl, f)


async def confirm(principal: Principal, token: Any) -> StoredFile:
    """Record an uploaded object and attach it where the upload said."""
    if not isinstance(token, str) or not token.startswith(f"{TOKEN_PREFIX}_") or len(token) > 200:
        raise ValidationFailed(details={"upload_token": ["must be the upload_token from POST /api/v1/files/upload"]})
    f = await StoredFile.get_or_none(upload_token_hash=hash_token(token), organization_id=principal.org_id, deleted_at=None)
    if f is None:
        raise NotFound("Upload not found.")
    if f.entry_id is None:
        require_scope(principal, "conversations:write")
    else:
        require_scope(principal, "files:write")
        require_scope(principal, "data.tables:write")
    if f.status == "confirmed":
        raise Conflict("This upload is already confirmed.", code="already_confirmed")
    if f.upload_expires_at is not None and f.upload_expires_at < utcnow():
        raise UploadExpired()
    actual = await storage.current().size_of(f.key)
    if actual is None:
        raise ValidationFailed(
            "Nothing was uploaded for this token yet.", details={"upload_token": ["no object was uploaded for this token"]}
        )
    if abs(actual - f.size_bytes) > f.size_bytes * SIZE_TOLERANCE:
        raise ValidationFailed(
            "The uploaded file's size does not match the size declared for it.",
            details={"size_bytes": [f"declared {f.size_bytes} bytes, uploaded {actual}"]},
        )
    now = utcnow()
    async with atomic():
        won = await StoredFile.filter(id=f.id, status="pending", deleted_at=None).update(
            status="confirmed", size_bytes=actual, confirmed_at=now, upload_expires_at=None
        )
        if not won:
            raise Conflict("This upload is already confirmed.", code="already_confirmed")
        f.status, f.size_bytes, f.confirmed_at, f.upload_expires_at = "confirmed", actual, now, None
        if f.entry_id is not None and f.field_id is not None:
            await entries.attach_file(principal, f.entry_id, f.field_id, f.id)
    return f


# ---------------------------------------------------------------- read, download, delete


async def list_files(principal: Principal, *, limit: int = 50, offset: int = 0) -> tuple[list[StoredFile], int]:
    require_scope(principal, "files:read")
    q = StoredFile.filter(organization_id=principal.org_id, status="confirmed", deleted_at=None)
    return list(await q.order_by("-created_at", "-id").offset(offset).limit(limit)), await q.count()


async def get_file(principal: Principal, file_id: str, *, scope: str = "files:read") -> StoredFile:
    require_scope(principal, scope)
    f = (
        await StoredFile.get_or_none(id=file_id, organization_id=principal.org_id, status="confirmed", deleted_at=None)
        if well_formed(file_id)
        else None
    )
    if f is None:
        raise NotFound("File not found.")
    return f


async def download_url(f: StoredFile, request_base: str | None = None) -> str:
    return await storage.current().download_url(
        f.key, filename=f.filename, content_type=f.content_type, expires_in=DOWNLOAD_TTL, base_url=base_url(request_base)
    )


async def delete_file(principal: Principal, file_id: str) -> None:
    """Soft delete: the file leaves its entry at once; its object goes after the retention."""
    f = await get_file(principal, file_id, scope="files:write")
    if f.entry_id is not None:
        require_scope(principal, "data.tables:write")
    async with atomic():
        if not await StoredFile.filter(id=f.id, deleted_at=None).update(deleted_at=utcnow()):
            raise NotFound("File not found.")
        if f.entry_id is not None and f.field_id is not None:
            await entries.detach_file(principal, f.entry_id, f.field_id, f.id)
    Sweeper.nudge()


# ---------------------------------------------------------------- message attachments


@dataclass
class Attached:
    """A message's files: what the message stores of each, and how clients see them now."""

    stored: list[dict[str, Any]]
    views: list[dict[str, Any]]


async def attach(org_id: str, ids: Any) -> Attached | None:
    """Check a message's ``attachments`` (confirmed file ids of the organization); None for none."""
    if ids is None or ids == []:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_ATTACHMENTS:
        raise ValidationFailed(details={"attachments": [f"must be a list of at most {MAX_ATTACHMENTS} file ids"]})
    wanted = list(dict.fromkeys(ids))
    found = await _live(org_id, wanted)
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed(details={"attachments": ["no such confirmed file: " + ", ".join(missing[:10])]})
    stored = [
        {"file_id": f.id, "filename": f.filename, "content_type": f.content_type, "size_bytes": f.size_bytes}
        for f in (found[i] for i in wanted)
    ]
    return Attached(stored, await _views(stored, found))


async def sign_attachments(org_id: str, messages: list[Any]) -> None:
    """Give the messages that carry files their download URLs (``attachment_views``), valid
    for an hour from now; a file deleted since shows no URL."""
    carrying = [m for m in messages if getattr(m, "attachments", None)]
    if not carrying:
        return
    live = await _live(org_id, [a["file_id"] for m in carrying for a in m.attachments])
    for m in carrying:
        m.attachment_views = await _views(m.attachments, live)


async def _live(org_id: str, ids: list[str]) -> dict[str, StoredFile]:
    rows = await StoredFile.filter(id__in=list(set(ids)), organization_id=org_id, status="confirmed", deleted_at=None)
    return {f.id: f for f in rows}


async def _views(stored: list[dict[str, Any]], live: dict[str, StoredFile]) -> list[dict[str, Any]]:
    out = []
    for item in stored:
        f = live.get(item["file_id"])
        out.append({
            "id": item["file_id"],
            "filename": item["filename"],
            "content_type": item["content_type"],
            "size_bytes": item["size_bytes"],
            "download_url": await download_url(f) if f is not None else None,
        })
    return out


# ---------------------------------------------------------------- the sweeper


def _due(now: datetime) -> Any:
    from tortoise.expressions import Q

    return Q(status="pending", upload_expires_at__lt=now) | Q(
        deleted_at__lt=now - timedelta(seconds=_settings.file_retention_seconds)
    )


async def sweep(limit: int = 200) -> int:
    """Remove the objects of uploads never confirmed (after their token expired) and of files
    deleted longer ago than the retention period, then their rows."""
    due = await StoredFile.filter(_due(utcnow())).order_by("id").limit(limit)
    store = storage.current()
    removed = 0
    for f in due:
        try:
            await store.delete(f.key)
        except SwitchboardError:
            log.warning("file %s: object not removed yet (storage error); will retry", f.id)
            continue
        await StoredFile.filter(id=f.id).delete()
        removed += 1
    return removed if len(due) == limit else 0


async def _next_due() -> datetime | None:
    pending = await StoredFile.filter(status="pending", deleted_at=None).order_by("upload_expires_at").first()
    deleted = await StoredFile.exclude(deleted_at=None).order_by("deleted_at").first()
    moments = []
    if pending is not None and pending.upload_expires_at is not None:
        moments.append(pending.upload_expires_at)
    if deleted is not None and deleted.deleted_at is not None:
        moments.append(deleted.deleted_at + timedelta(seconds=_settings.file_retention_seconds))
    return min(moments) if moments else None


class Sweeper(Recurring):
    def __init__(self) -> None:
        super().__init__("file-sweeper", sweep, next_due=_next_due, idle=3600.0)
