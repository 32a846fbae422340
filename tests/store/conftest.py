"""Helpers for the store tests: a database and a table made through the API."""

from __future__ import annotations

from typing import Any

import pytest


class Api:
    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    async def call(self, method: str, path: str, json: Any = None, status: int | None = None) -> Any:
        response = await getattr(self.client, method)(f"/api/v1{path}", json=json, headers=self.headers)
        body = await response.get_json() if response.status_code != 204 else None
        if status is not None:
            assert response.status_code == status, (response.status_code, body)
        return response.status_code, body

    async def ok(self, method: str, path: str, json: Any = None, status: int = 200) -> Any:
        _, body = await self.call(method, path, json, status)
        return body

    async def table(self, name: str = "Tasks", fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        db = (await self.ok("post", "/databases", {"name": "DB " + name}, 201))["data"]
        table = (await self.ok("post", f"/databases/{db['id']}/tables", {"name": name}, 201))["data"]
        for f in fields or []:
            await self.ok("post", f"/tables/{table['id']}/fields", f, 201)
        return (await self.ok("get", f"/tables/{table['id']}"))["data"]

    async def file(self, data: bytes = b"%PDF", filename: str = "a.pdf", content_type: str = "application/pdf") -> str:
        """A confirmed file's id: upload request, the bytes written as the signed PUT writes
        them (the local backend), confirm."""
        from app import storage
        from app.store.models import StoredFile

        up = (await self.ok("post", "/files/upload", {"filename": filename, "content_type": content_type, "size_bytes": len(data)}))["data"]
        row = await StoredFile.get(id=up["file_id"])

        async def body() -> Any:
            yield data

        await storage.current().write(row.upload_key, body(), len(data))  # type: ignore[attr-defined]
        return str((await self.ok("post", "/files/confirm", {"upload_token": up["upload_token"]}))["data"]["id"])


@pytest.fixture
def api(client: Any, orgs: Any) -> Api:
    return Api(client, orgs.a.headers)


@pytest.fixture
def api_b(client: Any, orgs: Any) -> Api:
    return Api(client, orgs.b.headers)
