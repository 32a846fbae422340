"""Files: the presigned upload flow, listing, downloads, deletes, message attachments and
the sweeper that removes objects nobody will ask for again.

    upload   a pending row and a URL the client PUTs the bytes to (its upload key)
    confirm  the bytes move to a key of their own (a late PUT to the upload URL cannot replace
             them), their size must be within 10 % of the declared one; the file is recorded
             and, when an entry and field were named, added to that entry's file field
    delete   a soft delete; the sweeper removes the object after the retention period

A file named with no entry and field is a message attachment. API keys upload with the
contract's scopes; a person may upload attachments with ``conversations:write``, and sees
the organization's table files plus the attachments they uploaded (owners and admins see all).
Upload tokens are stored hashed and work only for the organization that asked for them."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Min, Sum

from .. import storage
from ..kernel.auth import Principal, require_scope
from ..kernel.config import Settings
from ..kernel.errors import Conflict, NotFound, StorageError, SwitchboardError, ValidationFailed
from ..kernel.hashing import hash_token
from ..kernel.ids import new_id
from ..kernel.plans import enforce_limit
from ..kernel.recurring import Recurring
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..store import entries
from ..store.access import fetch_entry, get_field, well_formed
from ..store.files import confirmed, file_value
from ..store.models import StoredFile
from ..storage.local import PUT_SLACK

__all__ = [
    "configure", "base_url", "Upload", "request_upload", "confirm", "list_files", "get_file", "download_url",
    "delete_file", "Attached", "attach", "sign_attachments", "sweep", "Sweeper", "DOWNLOAD_TTL", "UploadExpired",
    "file_value",
]

log = logging.getLogger("switchboard.files")

DOWNLOAD_TTL = 3600  # the contract: download URLs last an hour
SIZE_TOLERANCE = 0.10  # the contract: a confirmed object may differ from the declared size by 10 %
MAX_ATTACHMENTS = 20
TOKEN_PREFIX = "upl"
RETRY_AFTER = timedelta(minutes=5)  # the sweeper's pause on an object the store would not delete
# Objects at an upload key are removed this long after its URL expired: a PUT begun in time
# may still be arriving (the local backend refuses to finish one later than PUT_SLACK).
UPLOAD_GRACE = timedelta(seconds=PUT_SLACK * 5)
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")

_settings = Settings()


class UploadExpired(SwitchboardError):
    status, code, message = 410, "upload_expired", "This upload token has expired; request a new upload."


def _already_confirmed() -> Conflict:
    return Conflict("This upload is already confirmed.", code="already_confirmed")


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def public_url() -> str | None:
    """The configured public URL, if any (never one derived from a request's Host header)."""
    return _settings.public_url.rstrip("/") or None


def base_url(link_base: str | None = None) -> str:
    """Where the gateway's own file URLs point: the public URL, else the host the request
    came to, else the listen address."""
    return (_settings.public_url or link_base or f"http://{_settings.host}:{_settings.port}").rstrip("/")


# ---------------------------------------------------------------- checks


def _check_upload(filename: Any, content_type: Any, size_bytes: Any) -> tuple[str, str, int]:
    problems: dict[str, list[str]] = {}
    name = filename.strip() if isinstance(filename, str) else ""
    if not name:
        problems["filename"] = ["is required: the file's name with its extension"]
    elif len(name) > 255 or any(c in name for c in "/\\") or any(unicodedata.category(c) == "Cc" for c in name):
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


def _safe_name(filename: str) -> str:
    # The object's name keeps the extension readable; the file id keeps it unique.
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "file")[-120:]


def _visible(principal: Principal) -> Q:
    """The files a caller may see: all of the organization's for keys, owners and admins; for
    members, the table files and their own attachments."""
    if principal.sees_all_conversations:
        return Q(organization_id=principal.org_id)
    mine = principal.user.id if principal.user else ""
    return Q(organization_id=principal.org_id) & (Q(entry_id__not_isnull=True) | Q(created_by=mine))


def _require_upload_scopes(principal: Principal, for_entry: bool) -> None:
    if for_entry or principal.kind == "api_key":
        require_scope(principal, "files:write")
    if for_entry:
        require_scope(principal, "data.tables:write")
    else:
        require_scope(principal, "conversations:write")  # an attachment goes on a message


async def _stored_bytes(org_id: str) -> int:
    row = await StoredFile.filter(organization_id=org_id, deleted_at=None).exclude(status="expired").annotate(
        total=Sum("size_bytes")).first().values("total")
    return int((row or {}).get("total") or 0)


def _store_of(f: StoredFile) -> storage.Storage:
    store = storage.current()
    if f.bucket != store.bucket:
        raise StorageError(f"The file is kept in {f.bucket!r}; this server stores files in {store.bucket!r}.")
    return store


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
    link_base: str | None = None,
) -> Upload:
    """Check the request, reserve the file, and sign the URL the bytes go to."""
    for_entry = entry_id is not None or field_id is not None
    _require_upload_scopes(principal, for_entry)
    table_id = None
    if for_entry:
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
    upload_key = _folder(principal.org_id, "uploads", file_id) + _safe_name(name)
    ttl = _settings.upload_ttl_seconds
    url, headers = await store.upload_url(upload_key, content_type=ctype, size=size, expires_in=ttl, base_url=base_url(link_base))
    token = f"{TOKEN_PREFIX}_{secrets.token_urlsafe(32)}"
    f = await StoredFile.create(
        id=file_id,
        organization_id=principal.org_id,
        upload_key=upload_key,
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
    _require_upload_scopes(principal, f.entry_id is not None)
    if f.status == "confirmed":
        raise _already_confirmed()
    if f.status != "pending" or (f.upload_expires_at is not None and f.upload_expires_at < utcnow()):
        raise UploadExpired()
    store = _store_of(f)
    # Each confirm moves the bytes to a key of its own: only the one that records the file
    # keeps its object, and a PUT arriving later lands beside it, not on it.
    key = f"{_folder(f.organization_id, 'files', f.id)}{secrets.token_hex(4)}/{_safe_name(f.filename)}"  # type: ignore[attr-defined]
    if not await store.promote(f.upload_key, key):
        if await StoredFile.exists(id=f.id, status="confirmed"):
            raise _already_confirmed()
        raise ValidationFailed(
            "Nothing was uploaded for this token yet.", details={"upload_token": ["no object was uploaded for this token"]}
        )
    try:
        actual = await store.size_of(key)
        if actual is None:  # moved away by a confirm racing this one
            raise _already_confirmed()
        if abs(actual - f.size_bytes) > f.size_bytes * SIZE_TOLERANCE:
            raise ValidationFailed(
                "The uploaded file's size does not match the size declared for it; upload it again.",
                details={"size_bytes": [f"declared {f.size_bytes} bytes, uploaded {actual}"]},
            )
        now = utcnow()
        async with atomic():
            if f.entry_id is not None:
                await entries.hold(principal, f.entry_id)
            won = await StoredFile.filter(
                id=f.id, status="pending", deleted_at=None, upload_expires_at__gte=now
            ).update(status="confirmed", key=key, size_bytes=actual, confirmed_at=now)
            if not won:
                current = await StoredFile.get_or_none(id=f.id)
                if current is not None and current.status == "confirmed":
                    raise _already_confirmed()
                raise UploadExpired()
            f.status, f.key, f.size_bytes, f.confirmed_at = "confirmed", key, actual, now
            if f.entry_id is not None and f.field_id is not None:
                await entries.attach_file(principal, f.entry_id, f.field_id, f.id)
    except BaseException:
        await _discard(store, f.id, key)
        raise
    return f


async def _discard(store: storage.Storage, file_id: str, key: str) -> None:
    """Remove a confirm attempt's copy, unless the file was recorded with it after all (a
    request cancelled just after its commit). Whatever stays is swept with the file's folder."""
    try:
        if not await StoredFile.exists(id=file_id, key=key):
            await store.delete(key)
    except Exception:  # noqa: BLE001 - the request's own error is the one to report
        log.warning("file %s: could not remove the attempt %s; the sweeper will", file_id, key, exc_info=True)


# ---------------------------------------------------------------- read, download, delete


async def list_files(principal: Principal, *, limit: int = 50, offset: int = 0) -> tuple[list[StoredFile], int]:
    require_scope(principal, "files:read")
    q = StoredFile.filter(_visible(principal), status="confirmed", deleted_at=None)
    return list(await q.order_by("-created_at", "-id").offset(offset).limit(limit)), await q.count()


async def get_file(principal: Principal, file_id: str, *, scope: str = "files:read") -> StoredFile:
    require_scope(principal, scope)
    f = (
        await StoredFile.filter(_visible(principal), id=file_id, status="confirmed", deleted_at=None).first()
        if well_formed(file_id)
        else None
    )
    if f is None:
        raise NotFound("File not found.")
    return f


async def download_url(f: StoredFile, link_base: str | None = None, *, ttl: int = DOWNLOAD_TTL) -> str:
    assert f.key is not None  # confirmed files have one
    return await _store_of(f).download_url(
        f.key, filename=f.filename, content_type=f.content_type, expires_in=ttl, base_url=base_url(link_base)
    )


async def delete_file(principal: Principal, file_id: str) -> None:
    """Soft delete: the file leaves its cell at once; its object goes after the retention."""
    f = await get_file(principal, file_id, scope="files:write")
    for _ in range(3):  # again if an entry claimed it meanwhile
        if f.entry_id is not None:
            require_scope(principal, "data.tables:write")
        async with atomic():
            if f.entry_id is not None:
                await entries.hold(principal, f.entry_id)  # entry first, as entry writes lock
            deleted = await StoredFile.filter(id=f.id, deleted_at=None, entry_id=f.entry_id).update(deleted_at=utcnow())
            if deleted and f.entry_id is not None and f.field_id is not None:
                await entries.detach_file(principal, f.entry_id, f.field_id, f.id)
        if deleted:
            Sweeper.nudge()
            return
        f = await get_file(principal, file_id, scope="files:write")
    raise Conflict("The file kept changing; try again.")


# ---------------------------------------------------------------- message attachments


@dataclass
class Attached:
    """A message's files: what the message stores of each, and how clients see them now."""

    stored: list[dict[str, Any]]
    views: list[dict[str, Any]]


async def attach(principal: Principal, ids: Any, link_base: str | None = None) -> Attached | None:
    """Check a message's ``attachments`` (confirmed file ids the sender may see); None for
    none. The URLs last as long as the message's webhook delivery is retried."""
    if ids is None or ids == []:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_ATTACHMENTS:
        raise ValidationFailed(details={"attachments": [f"must be a list of at most {MAX_ATTACHMENTS} file ids"]})
    wanted = list(dict.fromkeys(ids))
    found = {f.id: f for f in await StoredFile.filter(
        _visible(principal), id__in=[i for i in wanted if well_formed(i)], status="confirmed", deleted_at=None)}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed(details={"attachments": ["no such confirmed file: " + ", ".join(i[:40] for i in missing[:10])]})
    stored = [
        {"file_id": f.id, "filename": f.filename, "content_type": f.content_type, "size_bytes": f.size_bytes}
        for f in (found[i] for i in wanted)
    ]
    ttl = max(DOWNLOAD_TTL, _settings.webhook_max_age_seconds)
    return Attached(stored, await _views(stored, found, link_base, ttl))


async def sign_attachments(org_id: str, messages: list[Any], link_base: str | None = None) -> None:
    """Give the messages that carry files their download URLs (``attachment_views``), valid
    for an hour from now; a file deleted since shows no URL."""
    carrying = [m for m in messages if getattr(m, "attachments", None)]
    if not carrying:
        return
    live = await confirmed(org_id, [a["file_id"] for m in carrying for a in m.attachments])
    for m in carrying:
        m.attachment_views = await _views(m.attachments, live, link_base, DOWNLOAD_TTL)


async def _views(stored: list[dict[str, Any]], live: dict[str, StoredFile], link_base: str | None, ttl: int) -> list[dict[str, Any]]:
    out = []
    for item in stored:
        f = live.get(item["file_id"])
        url = None
        if f is not None:
            try:
                url = await download_url(f, link_base, ttl=ttl)
            except StorageError:
                url = None  # kept in a store this server no longer uses
        out.append({
            "id": item["file_id"],
            "filename": item["filename"],
            "content_type": item["content_type"],
            "size_bytes": item["size_bytes"],
            "download_url": url,
        })
    return out


# ---------------------------------------------------------------- the sweeper


def _due(now: datetime) -> Q:
    """Rows with objects to remove: an upload URL expired (past the slack a PUT begun in time
    may take) with what it may have left, or a file deleted longer ago than the retention."""
    retention = now - timedelta(seconds=_settings.file_retention_seconds)
    uploads_done = now - UPLOAD_GRACE
    return (Q(upload_expires_at__lt=uploads_done) | Q(deleted_at__lt=retention)) & (Q(retry_at=None) | Q(retry_at__lt=now))


def _folder(org_id: str, kind: str, file_id: str) -> str:
    """A file's own folder of upload attempts (``uploads``) or stored copies (``files``)."""
    return f"{org_id}/{kind}/{file_id}/"


async def sweep(limit: int = 200) -> int:
    """One batch: expire uploads never confirmed (then remove them), remove what a confirmed
    upload's URL may have left, and remove deleted files after the retention period. A file's
    folders go whole, so nothing a failed cleanup or a late upload left stays behind. An
    object the store will not delete is tried again later, without holding up the others."""
    now = utcnow()
    # Claim expired uploads first: a confirm racing the sweeper loses cleanly (410).
    await StoredFile.filter(status="pending", upload_expires_at__lt=now).update(status="expired")
    due = await StoredFile.filter(_due(now)).order_by("id").limit(limit)
    retention = now - timedelta(seconds=_settings.file_retention_seconds)
    for f in due:
        gone = f.status == "expired" or (f.deleted_at is not None and f.deleted_at < retention)
        org_id = f.organization_id  # type: ignore[attr-defined]
        try:
            store = _store_of(f)
            await store.delete_prefix(_folder(org_id, "uploads", f.id))
            if gone:
                await store.delete_prefix(_folder(org_id, "files", f.id))
        except SwitchboardError as exc:
            log.warning("file %s: objects not removed yet (%s); trying again later", f.id, exc.message)
            await StoredFile.filter(id=f.id).update(retry_at=now + RETRY_AFTER)
            continue
        if gone:
            await StoredFile.filter(id=f.id).delete()
        else:  # a confirmed file: only its upload folder was left to clear
            await StoredFile.filter(id=f.id, upload_expires_at=f.upload_expires_at).update(upload_expires_at=None)
    return len(due) if len(due) == limit else 0


async def _next_due() -> datetime | None:
    now = utcnow()
    ready = Q(retry_at=None) | Q(retry_at__lt=now)
    row = await StoredFile.filter(ready).annotate(
        upload=Min("upload_expires_at"), deleted=Min("deleted_at")).first().values("upload", "deleted")
    later = await StoredFile.filter(retry_at__gte=now).annotate(retry=Min("retry_at")).first().values("retry")
    moments = [m for m in ((later or {}).get("retry"),) if m is not None]
    if (row or {}).get("upload") is not None:
        moments.append(row["upload"] + UPLOAD_GRACE)
    if (row or {}).get("deleted") is not None:
        moments.append(row["deleted"] + timedelta(seconds=_settings.file_retention_seconds))
    return min(moments) if moments else None


class Sweeper(Recurring):
    def __init__(self) -> None:
        super().__init__("file-sweeper", sweep, next_due=_next_due, idle=3600.0)
