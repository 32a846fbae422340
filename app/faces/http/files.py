"""Files: ``/api/v1/files`` — presigned upload, confirm, list, download URL, delete."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from quart import Blueprint, Response, request
from typing_extensions import TypedDict

from ...services import files
from ...store.shapes import ListJSON, list_json
from ..arguments import Page, checked
from ..results import FileJSON, file_json
from .documented import documented
from .envelopes import Data
from .request_io import Body, actor, json_object, parse_query

bp = Blueprint("files", __name__, url_prefix="/api/v1/files")


# Checked by the files service (every face the same); typed here for the schema.
class FileUpload(Body):
    """With entry_id and field_id the file goes in that entry's file cell (data.tables:write
    too); without, it is an attachment for a message (people: conversations:write)."""

    filename: Any = Field(json_schema_extra={"type": "string"}, examples=["invoice.pdf"])
    content_type: Any = Field(json_schema_extra={"type": "string"}, examples=["application/pdf"])
    size_bytes: Any = Field(json_schema_extra={"type": "integer", "minimum": 0}, examples=[48213])
    entry_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]})
    field_id: Any = Field(None, json_schema_extra={"type": ["string", "null"]})


class UploadConfirm(Body):
    upload_token: Any = Field(json_schema_extra={"type": "string"}, description="upload_token from the upload answer.")


class UploadJSON(TypedDict):
    upload_url: str  # PUT the bytes here, with upload_headers
    upload_token: str
    upload_headers: dict[str, str]
    expires_in: int
    file_id: str


class EntryCellJSON(TypedDict):
    id: str
    field_id: str | None


class ConfirmedFileJSON(FileJSON):
    file_value: dict[str, Any]  # what the entry's file cell holds
    download_url: str
    download_url_expires_in: int
    entry: EntryCellJSON | None


class DownloadJSON(TypedDict):
    download_url: str
    filename: str
    content_type: str
    size_bytes: int
    expires_in: int


@bp.get("")
@documented("List confirmed files", query=Page, scope="files:read")
async def list_files() -> ListJSON[FileJSON]:
    page = parse_query(Page)
    rows, total = await files.list_files(await actor(), limit=page.limit, offset=page.offset)
    return list_json([file_json(f) for f in rows], total, page.limit, page.offset)


@bp.post("/upload")
@documented("Reserve a file and get a presigned URL to PUT its bytes to", body=FileUpload, scope="files:write",
            errors=(402, 404, 502))
async def upload() -> Data[UploadJSON]:
    principal = await actor()
    body = await json_object()
    given = checked(FileUpload, {key: body.get(key) for key in FileUpload.model_fields})
    up = await files.request_upload(
        principal,
        entry_id=given.entry_id,
        field_id=given.field_id,
        filename=given.filename,
        content_type=given.content_type,
        size_bytes=given.size_bytes,
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
@documented("Confirm an upload: the file is stored (and put in its entry's cell)", body=UploadConfirm,
            scope="files:write", errors=(404, 409, 410, 502))
async def confirm() -> Data[ConfirmedFileJSON]:
    principal = await actor()
    body = await json_object()
    f = await files.confirm(principal, checked(UploadConfirm, {"upload_token": body.get("upload_token")}).upload_token)
    out = ConfirmedFileJSON(
        **file_json(f),
        file_value=files.file_value(f),
        download_url=await files.download_url(f, request.host_url),
        download_url_expires_in=files.DOWNLOAD_TTL,
        entry={"id": f.entry_id, "field_id": f.field_id} if f.entry_id else None,
    )
    return {"data": out}


@bp.get("/<file_id>/download")
@documented("Get a file's download URL (valid for an hour)", scope="files:read", errors=(502,))
async def download(file_id: str) -> Data[DownloadJSON]:
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
@documented("Delete a file (it leaves its cell at once)", status=204, scope="files:write")
async def delete(file_id: str) -> Response:
    await files.delete_file(await actor(), file_id)
    return Response(status=204)
