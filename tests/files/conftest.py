"""Fixtures for the file tests: the live server's fixtures, and a table with a file field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.chat.conftest import http, live_orgs, receiver, sockets  # noqa: F401 - fixtures shared with the chat tests


@dataclass
class FileTable:
    table_id: str
    field_id: str
    entry_id: str


async def file_table(http: httpx.AsyncClient, headers: dict[str, str]) -> FileTable:
    db = (await http.post("/api/v1/databases", json={"name": "Docs"}, headers=headers)).json()["data"]
    table = (await http.post(f"/api/v1/databases/{db['id']}/tables", json={"name": "Reports"}, headers=headers)).json()["data"]
    field = await http.post(f"/api/v1/tables/{table['id']}/fields", json={"name": "Report", "type": "file"}, headers=headers)
    assert field.status_code == 201, field.text
    entry = await http.post(f"/api/v1/tables/{table['id']}/entries", json={"values": {"Name": "Q3"}}, headers=headers)
    assert entry.status_code == 201, entry.text
    return FileTable(table["id"], field.json()["data"]["id"], entry.json()["data"]["id"])


async def request_upload(
    http: httpx.AsyncClient, headers: dict[str, str], where: FileTable | None, *, size: int,
    filename: str = "report.pdf", content_type: str = "application/pdf",
) -> httpx.Response:
    body: dict[str, Any] = {"filename": filename, "content_type": content_type, "size_bytes": size}
    if where is not None:
        body |= {"entry_id": where.entry_id, "field_id": where.field_id}
    return await http.post("/api/v1/files/upload", json=body, headers=headers)


async def upload_file(
    http: httpx.AsyncClient, headers: dict[str, str], where: FileTable | None, data: bytes, **kw: Any
) -> dict[str, Any]:
    """The whole flow: upload request, PUT to the signed URL, confirm. The confirm's data."""
    r = await request_upload(http, headers, where, size=len(data), **kw)
    assert r.status_code == 200, r.text
    up = r.json()["data"]
    put = await http.put(up["upload_url"], content=data, headers=up["upload_headers"])
    assert put.status_code == 200, put.text
    confirmed = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()["data"]  # type: ignore[no-any-return]


@pytest.fixture
async def table_a(http: httpx.AsyncClient, live_orgs: Any) -> FileTable:
    return await file_table(http, live_orgs.a.headers)
