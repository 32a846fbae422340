"""Files: ``/api/v1/files`` — presigned upload, confirm, list, download URL, delete."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, request

from ...services import files
from ...store.shapes import list_json
from ..arguments import PAGE_MAX
from ..results import file_json
from .request_io import actor, json_object, query_int

bp = Blueprint("files", __name__, url_prefix="/api/v1/files")


@bp.get("")
async def list_files() -> dict[str, Any]:
    limit, offset = query_int("limit", 50, minimum=1, maximum=PAGE_MAX), query_int("offset", 0)
    rows, total = await files.list_files(await actor(), limit=limit, offset=offset)
    return list_json([file_json(f) for f in rows], total, limit, offset)


@bp.post("/upload")
async def upload() -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    up = await files.request_upload(
        principal,
        entry_id=body.get("entry_id"),
        field_id=body.get("field_id"),
        filename=body.get("filename"),
        content_type=body.get("content_type"),
        size_bytes=body.get("size_bytes"),
        link_base=request.host_url,
    )
    return {
        "data": {
            "upload_url": up.url,
            "upload_token": up.token,
            "upload_headers": up.headers,
            "expires_in": up.expires_in,
            "file_id": up.file.id,
        }
    }


@bp.post("/confirm")
async def confirm() -> dict[str, Any]:
    principal = await actor()
    body = await json_object()
    f = await files.confirm(principal, body.get("upload_token"))
    out = file_json(f)
    out["file_value"] = files.file_value(f)
    out["download_url"] = await files.download_url(f, request.host_url)
    out["download_url_expires_in"] = files.DOWNLOAD_TTL
    out["entry"] = {"id": f.entry_id, "field_id": f.field_id} if f.entry_id else None
    return {"data": out}


@bp.get("/<file_id>/download")
async def download(file_id: str) -> dict[str, Any]:
    f = await files.get_file(await actor(), file_id)
    return {
        "data": {
            "download_url": await files.download_url(f, request.host_url),
            "filename": f.filename,
            "content_type": f.content_type,
            "size_bytes": f.size_bytes,
            "expires_in": files.DOWNLOAD_TTL,
        }
    }


@bp.delete("/<file_id>")
async def delete(file_id: str) -> Response:
    await files.delete_file(await actor(), file_id)
    return Response(status=204)
