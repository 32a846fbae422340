"""Files on the local-disk backend, against the real server: upload -> PUT -> confirm ->
download -> delete, signed URLs, sizes, limits, isolation, release and the sweeper."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from app import storage
from app.kernel.config import Settings
from app.services import files as file_service
from app.store.models import StoredFile
from tests.conftest import LiveServer, Orgs
from tests.files.conftest import FileTable, file_table, request_upload, upload_file

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


def _object_path(settings: Settings, key: str) -> Path:
    return Path(settings.data_dir) / "files" / key


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


async def test_upload_confirm_download_delete(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers
    r = await request_upload(http, h, table_a, size=len(PDF))
    assert r.status_code == 200, r.text
    up = r.json()["data"]
    assert up["upload_headers"] == {"Content-Type": "application/pdf"} and up["expires_in"] == 3600
    assert up["upload_url"].startswith(live_server.url + "/files/blob/" + live_orgs.a.id + "/uploads/")
    # Nothing is listed before the confirm, and the confirm needs the object.
    assert (await http.get("/api/v1/files", headers=h)).json()["meta"]["total"] == 0
    early = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert early.status_code == 422 and "upload_token" in early.json()["error"]["details"]

    put = await http.put(up["upload_url"], content=PDF, headers=up["upload_headers"])
    assert put.status_code == 200, put.text
    r = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    value = data["file_value"]
    assert data["filename"] == "report.pdf" and data["size_bytes"] == len(PDF) and data["content_type"] == "application/pdf"
    assert value["file_id"] == data["id"] and value["size"] == len(PDF) and value["bucket"] == "local"
    assert value["key"].startswith(f"{live_orgs.a.id}/files/") and value["key"].endswith("report.pdf")
    assert data["entry"] == {"id": table_a.entry_id, "field_id": table_a.field_id}
    assert data["download_url_expires_in"] == 3600
    again = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_confirmed"

    # attached to the entry's file field, as its file value
    entry = (await http.get(f"/api/v1/entries/{table_a.entry_id}", headers=h)).json()["data"]
    assert entry["values"][table_a.field_id] == [value]

    listed = (await http.get("/api/v1/files?limit=10", headers=h)).json()
    assert listed["meta"] == {"total": 1, "limit": 10, "offset": 0}
    assert [f["id"] for f in listed["data"]] == [data["id"]]
    assert (await http.get("/api/v1/files?limit=201", headers=h)).status_code == 422

    for url in (data["download_url"], (await http.get(f"/api/v1/files/{data['id']}/download", headers=h)).json()["data"]["download_url"]):
        got = await http.get(url)  # the signature is the credential: no API key
        assert got.status_code == 200 and got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''report.pdf"
    info = (await http.get(f"/api/v1/files/{data['id']}/download", headers=h)).json()["data"]
    assert info["expires_in"] == 3600 and info["size_bytes"] == len(PDF) and info["filename"] == "report.pdf"

    assert (await http.delete(f"/api/v1/files/{data['id']}", headers=h)).status_code == 204
    assert (await http.get("/api/v1/files", headers=h)).json()["meta"]["total"] == 0
    assert (await http.get(f"/api/v1/files/{data['id']}/download", headers=h)).status_code == 404
    assert (await http.delete(f"/api/v1/files/{data['id']}", headers=h)).status_code == 404
    entry = (await http.get(f"/api/v1/entries/{table_a.entry_id}", headers=h)).json()["data"]
    assert table_a.field_id not in entry["values"]  # the deleted file left its entry
    # soft delete: the object stays until the retention period has passed
    assert _object_path(live_server.settings, value["key"]).exists()


async def test_signed_urls_refuse_tampering_and_expiry(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers
    up = (await request_upload(http, h, table_a, size=100)).json()["data"]
    for bad in (
        _with_query(up["upload_url"], **{"X-Max": "1000000"}),  # a bigger allowance than was signed
        _with_query(up["upload_url"], **{"X-Signature": "0" * 64}),
        _with_query(up["upload_url"], **{"X-Expires": "9999999999"}),
        up["upload_url"].replace("report.pdf", "other.pdf"),
    ):
        r = await http.put(bad, content=b"x" * 100, headers=up["upload_headers"])
        assert r.status_code == 403 and r.json()["error"]["code"] == "invalid_signature", (bad, r.text)
    wrong_type = await http.put(up["upload_url"], content=b"x" * 100, headers={"Content-Type": "text/html"})
    assert wrong_type.status_code == 403 and wrong_type.json()["error"]["code"] == "content_type_mismatch"
    as_get = await http.get(up["upload_url"])  # a PUT URL does not read
    assert as_get.status_code == 403
    assert (await http.post(up["upload_url"], content=b"x")).status_code == 405

    data = await upload_file(http, h, table_a, b"y" * 50, filename="notes.txt", content_type="text/plain")
    tampered = _with_query(data["download_url"], **{"X-Name": "evil.html", "X-Type": "text/html"})
    assert (await http.get(tampered)).status_code == 403
    # a URL signed by this server for the same object, already expired
    expired = await storage.current().download_url(
        data["file_value"]["key"], filename="notes.txt", content_type="text/plain", expires_in=-1, base_url=live_server.url
    )
    r = await http.get(expired)
    assert r.status_code == 403 and r.json()["error"]["code"] == "url_expired"


async def test_declared_size_is_enforced(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers
    up = (await request_upload(http, h, table_a, size=1000)).json()["data"]
    # more than declared: refused while writing, nothing stored
    over = await http.put(up["upload_url"], content=b"z" * 1001, headers=up["upload_headers"])
    assert over.status_code == 413
    streamed = await http.put(up["upload_url"], content=_chunks(b"z" * 1200, 3), headers=up["upload_headers"])
    assert streamed.status_code == 413  # chunked, no Content-Length: counted as it arrives
    key = (await StoredFile.get(id=up["file_id"])).upload_key
    assert not _object_path(live_server.settings, key).exists()
    assert not list(_object_path(live_server.settings, key).parent.glob("*"))  # no partial file left
    # 20 % short: outside the contract's 10 % tolerance
    assert (await http.put(up["upload_url"], content=b"z" * 800, headers=up["upload_headers"])).status_code == 200
    r = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["details"] == {"size_bytes": ["declared 1000 bytes, uploaded 800"]}
    # 5 % short: recorded with the size actually stored
    assert (await http.put(up["upload_url"], content=b"z" * 950, headers=up["upload_headers"])).status_code == 200
    r = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert r.status_code == 200 and r.json()["data"]["size_bytes"] == 950


async def _chunks(data: bytes, parts: int) -> Any:
    step = len(data) // parts
    for i in range(0, len(data), step):
        yield data[i : i + step]


async def test_bad_requests_are_clear(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers

    async def upload(**body: Any) -> httpx.Response:
        base = {"entry_id": table_a.entry_id, "field_id": table_a.field_id, "filename": "a.pdf",
                "content_type": "application/pdf", "size_bytes": 10}
        return await http.post("/api/v1/files/upload", json=base | body, headers=h)

    for body, key in (
        ({"filename": ""}, "filename"),
        ({"filename": "../../etc/passwd"}, "filename"),
        ({"filename": "x" * 300}, "filename"),
        ({"content_type": "pdf"}, "content_type"),
        ({"content_type": 5}, "content_type"),
        ({"size_bytes": -1}, "size_bytes"),
        ({"size_bytes": "10"}, "size_bytes"),
        ({"size_bytes": 100 * 1024 * 1024 + 1}, "size_bytes"),  # the default maximum is 100 MiB
        ({"entry_id": 7}, "entry_id"),
    ):
        r = await upload(**body)
        assert r.status_code == 422 and key in r.json()["error"]["details"], (body, r.text)
    assert (await upload(entry_id="en_nope")).status_code == 404
    assert (await upload(field_id="fd_nope")).status_code == 404
    name_field = (await http.get(f"/api/v1/tables/{table_a.table_id}/fields", headers=h)).json()["data"][0]
    wrong_kind = await upload(field_id=name_field["id"])  # a text field holds no files
    assert wrong_kind.status_code == 422 and "field_id" in wrong_kind.json()["error"]["details"]
    not_json = await http.post("/api/v1/files/upload", content=b"{", headers=h | {"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    for token, status in (("", 422), (5, 422), ("upl_" + "x" * 43, 404)):
        r = await http.post("/api/v1/files/confirm", json={"upload_token": token}, headers=h)
        assert r.status_code == status, (token, r.text)
    assert (await http.get("/api/v1/files", headers={})).status_code == 401


async def test_scopes(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    from app.models.core import Organization
    from app.services import api_keys

    org = await Organization.get(id=live_orgs.a.id)

    async def key(*scopes: str) -> dict[str, str]:
        raw = await api_keys.create_key_record(org, name="k", scopes=list(scopes), user=None)
        return {"Authorization": f"Bearer {raw}"}

    data = await upload_file(http, live_orgs.a.headers, table_a, b"q" * 10)
    reader = await key("files:read")
    assert (await http.get("/api/v1/files", headers=reader)).status_code == 200
    assert (await http.get(f"/api/v1/files/{data['id']}/download", headers=reader)).status_code == 200
    denied = await request_upload(http, reader, table_a, size=5)
    assert denied.status_code == 403 and denied.json()["error"]["details"] == {"required_scope": "files:write"}
    no_tables = await key("files:read", "files:write")
    denied = await request_upload(http, no_tables, table_a, size=5)
    assert denied.status_code == 403 and denied.json()["error"]["details"] == {"required_scope": "data.tables:write"}
    assert (await http.delete(f"/api/v1/files/{data['id']}", headers=no_tables)).status_code == 403
    assert (await http.get("/api/v1/files", headers=await key("data.tables:read"))).status_code == 403


async def test_another_organization_sees_nothing(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    a, b = live_orgs.a.headers, live_orgs.b.headers
    up = (await request_upload(http, a, table_a, size=4)).json()["data"]
    await http.put(up["upload_url"], content=b"abcd", headers=up["upload_headers"])
    assert (await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=b)).status_code == 404
    data = (await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=a)).json()["data"]
    assert (await http.get(f"/api/v1/files/{data['id']}/download", headers=b)).status_code == 404
    assert (await http.delete(f"/api/v1/files/{data['id']}", headers=b)).status_code == 404
    assert (await http.get("/api/v1/files", headers=b)).json()["data"] == []
    assert (await request_upload(http, b, table_a, size=4)).status_code == 404  # A's entry
    table_b = await file_table(http, b)
    r = await http.patch(f"/api/v1/entries/{table_b.entry_id}", json={"values": {"Report": [data["id"]]}}, headers=b)
    assert r.status_code == 422 and data["id"] in r.json()["error"]["details"]["Report"][0]


async def test_a_file_cell_holds_only_confirmed_files(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers
    create = f"/api/v1/tables/{table_a.table_id}/entries"
    invented = {"id": "f1", "filename": "x.pdf", "content_type": "application/pdf", "size_bytes": 3}
    for value in ([invented], ["file_invented"], [{"filename": "x"}], [5]):
        r = await http.post(create, json={"values": {"Report": value}}, headers=h)
        assert r.status_code == 422 and "Report" in r.json()["error"]["details"], (value, r.text)
    pending = (await request_upload(http, h, table_a, size=3)).json()["data"]
    r = await http.post(create, json={"values": {"Report": [pending["file_id"]]}}, headers=h)
    assert r.status_code == 422  # uploaded perhaps, never confirmed

    one = await upload_file(http, h, table_a, b"one")  # uploaded for the table's first entry
    two = await upload_file(http, h, None, b"two", filename="two.txt", content_type="text/plain")  # for a message
    taken = await http.post(create, json={"values": {"Name": "copy", "Report": [one["id"]]}}, headers=h)
    assert taken.status_code == 422 and f"belongs to entry {table_a.entry_id}" in taken.json()["error"]["details"]["Report"][0]
    r = await http.post(create, json={"values": {"Name": "copy", "Report": [two["file_value"]]}}, headers=h)
    assert r.status_code == 201, r.text
    copy = r.json()["data"]
    assert copy["values"][table_a.field_id] == [two["file_value"]]
    assert (await StoredFile.get(id=two["id"])).entry_id == copy["id"]  # the cell owns it now
    # bulk writes go through the same checks
    three = await upload_file(http, h, None, b"three", filename="3.txt", content_type="text/plain")
    bulk = await http.post(f"/api/v1/tables/{table_a.table_id}/entries/bulk", json={"operations": [
        {"action": "create", "values": {"Report": [three["id"]]}},
        {"action": "create", "values": {"Report": [two["id"]]}},
        {"action": "create", "values": {"Report": ["file_nope"]}},
    ]}, headers=h)
    assert bulk.status_code == 200 and (bulk.json()["data"]["succeeded"], bulk.json()["data"]["failed"]) == (1, 2)
    # an entry written back as it reads keeps its files; a file taken out of its cell is released
    same = await http.patch(f"/api/v1/entries/{copy['id']}", json={"values": copy["values"]}, headers=h)
    assert same.status_code == 200 and same.json()["data"]["values"][table_a.field_id] == [two["file_value"]]
    emptied = await http.patch(f"/api/v1/entries/{copy['id']}", json={"values": {"Report": []}}, headers=h)
    assert emptied.status_code == 200 and table_a.field_id not in emptied.json()["data"]["values"]
    assert (await http.get(f"/api/v1/files/{two['id']}/download", headers=h)).status_code == 404
    # a file deleted meanwhile cannot be written back
    back = await http.patch(f"/api/v1/entries/{copy['id']}", json={"values": {"Report": [two["id"]]}}, headers=h)
    assert back.status_code == 422
    # an absurd id is a 422 like any unknown one, never a 500
    r = await http.post(create, json={"values": {"Report": ["file_" + "x" * 200]}}, headers=h)
    assert r.status_code == 422


async def test_deleting_an_entry_or_a_file_field_releases_its_files(
    live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable
) -> None:
    h = live_orgs.a.headers
    first = await upload_file(http, h, table_a, b"1" * 10)
    assert (await http.delete(f"/api/v1/entries/{table_a.entry_id}", headers=h)).status_code == 204
    assert (await http.get(f"/api/v1/files/{first['id']}/download", headers=h)).status_code == 404
    other = (await http.post(f"/api/v1/tables/{table_a.table_id}/entries", json={"values": {"Name": "b"}}, headers=h)).json()["data"]
    second = await upload_file(http, h, FileTable(table_a.table_id, table_a.field_id, other["id"]), b"2" * 10)
    assert (await http.delete(f"/api/v1/fields/{table_a.field_id}", headers=h)).status_code == 204
    assert (await http.get("/api/v1/files", headers=h)).json()["meta"]["total"] == 0
    # a file field turned into another type holds no files any more
    table_c = await file_table(http, h)
    fourth = await upload_file(http, h, table_c, b"4" * 10)
    changed = await http.patch(f"/api/v1/fields/{table_c.field_id}", json={"type": "text"}, headers=h)
    assert changed.status_code == 200, changed.text
    assert (await http.get(f"/api/v1/files/{fourth['id']}/download", headers=h)).status_code == 404
    # a table's delete releases the files of every file field in it
    table_b = await file_table(http, h)
    third = await upload_file(http, h, table_b, b"3" * 10)
    assert (await http.delete(f"/api/v1/tables/{table_b.table_id}", headers=h)).status_code == 204
    assert (await http.get(f"/api/v1/files/{third['id']}/download", headers=h)).status_code == 404
    # after the retention period the sweeper removes the objects and the rows
    paths = [_object_path(live_server.settings, d["file_value"]["key"]) for d in (first, second, third)]
    assert all(p.exists() for p in paths)
    file_service.configure(live_server.settings.with_overrides(file_retention_seconds=0))
    try:
        await sweep_all()
    finally:
        file_service.configure(live_server.settings)
    assert not any(p.exists() for p in paths)
    assert await StoredFile.filter(id__in=[first["id"], second["id"], third["id"]]).count() == 0


async def test_uploads_never_confirmed_are_swept(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    from datetime import timedelta

    from app.kernel.timefmt import utcnow

    h = live_orgs.a.headers
    up = (await request_upload(http, h, table_a, size=5)).json()["data"]
    await http.put(up["upload_url"], content=b"abcde", headers=up["upload_headers"])
    kept = await upload_file(http, h, table_a, b"kept!")
    row = await StoredFile.get(id=up["file_id"])
    assert _object_path(live_server.settings, row.upload_key).exists()
    await sweep_all()
    assert await StoredFile.exists(id=up["file_id"])  # its token is still valid
    await StoredFile.filter(id=up["file_id"]).update(upload_expires_at=utcnow() - timedelta(seconds=1))
    expired = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "upload_expired"
    # just expired: claimed by the sweeper, but its object waits out the grace a late PUT may take
    await sweep_all()
    assert (await StoredFile.get(id=up["file_id"])).status == "expired"
    assert _object_path(live_server.settings, row.upload_key).exists()
    await StoredFile.filter(id=up["file_id"]).update(upload_expires_at=utcnow() - file_service.UPLOAD_GRACE - timedelta(seconds=1))
    await sweep_all()
    assert not await StoredFile.exists(id=up["file_id"])
    assert not _object_path(live_server.settings, row.upload_key).exists()
    assert (await http.get(f"/api/v1/files/{kept['id']}/download", headers=h)).status_code == 200


async def sweep_all() -> None:
    while await file_service.sweep():
        pass


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Small limits for these tests: 64 KiB files, PDFs, plain text and images only."""
    return settings.with_overrides(file_max_bytes=64 * 1024, file_types=("application/pdf", "text/plain", "image/*"))


async def test_size_and_type_limits(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    h = live_orgs.a.headers
    too_big = await request_upload(http, h, table_a, size=64 * 1024 + 1)
    assert too_big.status_code == 422 and too_big.json()["error"]["details"] == {"size_bytes": ["must be at most 65536 bytes"]}
    assert (await request_upload(http, h, table_a, size=64 * 1024)).status_code == 200
    for ctype, status in (("image/png", 200), ("text/plain", 200), ("text/html", 422), ("application/zip", 422)):
        r = await request_upload(http, h, table_a, size=10, content_type=ctype)
        assert r.status_code == status, (ctype, r.text)


async def test_plan_storage_limit(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable, tmp_path: Path) -> None:
    from app.kernel import plans
    from app.models.core import Organization

    path = tmp_path / "plans.json"
    path.write_text(json.dumps({"tiny": {"name": "Tiny", "limits": {"storage_bytes": 1000}}, "self-hosted": {"name": "S", "limits": {}}}))
    plans.configure(str(path))
    try:
        await Organization.filter(id=live_orgs.a.id).update(plan="tiny")
        h = live_orgs.a.headers
        await upload_file(http, h, table_a, b"x" * 600, content_type="text/plain", filename="a.txt")
        r = await request_upload(http, h, table_a, size=500)
        assert r.status_code == 402 and r.json()["error"]["code"] == "plan_limit_reached"
        assert (await request_upload(http, h, table_a, size=400)).status_code == 200  # pending uploads count too
        r = await request_upload(http, h, table_a, size=1)
        assert r.status_code == 402
    finally:
        plans.configure(live_server.settings.plans_file)


async def test_a_late_put_cannot_replace_a_confirmed_file(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    from datetime import timedelta

    from app.kernel.timefmt import utcnow

    h = live_orgs.a.headers
    up = (await request_upload(http, h, table_a, size=8)).json()["data"]
    assert (await http.put(up["upload_url"], content=b"original", headers=up["upload_headers"])).status_code == 200
    data = (await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)).json()["data"]
    # the URL is still within its hour: a second PUT lands at the upload key, not on the file
    assert (await http.put(up["upload_url"], content=b"EVIL!!!!", headers=up["upload_headers"])).status_code == 200
    assert (await http.get(data["download_url"])).content == b"original"
    again = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert again.status_code == 409
    # once the URL has expired, the sweeper clears what it left; the file stays
    row = await StoredFile.get(id=data["id"])
    leftover = _object_path(live_server.settings, row.upload_key)
    assert leftover.exists()
    await StoredFile.filter(id=data["id"]).update(upload_expires_at=utcnow() - file_service.UPLOAD_GRACE - timedelta(seconds=1))
    await sweep_all()
    assert not leftover.exists()
    assert (await http.get(data["download_url"])).content == b"original"
    assert (await StoredFile.get(id=data["id"])).upload_expires_at is None


async def test_a_members_attachments_are_their_own(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    from tests.chat.test_realtime import add_member, bearer

    _, pat = await add_member(http, live_orgs.a.headers, "pat@acme.example")
    _, sam = await add_member(http, live_orgs.a.headers, "sam@acme.example")
    payslip = await upload_file(http, bearer(pat), None, b"salary", filename="payslip.pdf")
    table_file = await upload_file(http, live_orgs.a.headers, table_a, b"shared")
    assert {f["id"] for f in (await http.get("/api/v1/files", headers=bearer(pat))).json()["data"]} == {payslip["id"], table_file["id"]}
    assert [f["id"] for f in (await http.get("/api/v1/files", headers=bearer(sam))).json()["data"]] == [table_file["id"]]
    assert (await http.get(f"/api/v1/files/{payslip['id']}/download", headers=bearer(sam))).status_code == 404
    assert (await http.get(f"/api/v1/files/{table_file['id']}/download", headers=bearer(sam))).status_code == 200
    # owners, admins and API keys see every file
    assert (await http.get(f"/api/v1/files/{payslip['id']}/download", headers=live_orgs.a.headers)).status_code == 200


async def test_odd_requests_to_the_signed_urls(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable) -> None:
    data = await upload_file(http, live_orgs.a.headers, table_a, b"abc")
    head = await http.head(data["download_url"])
    assert head.status_code == 200 and head.headers["content-length"] == "3" and head.content == b""
    bad_head = await http.head(_with_query(data["download_url"], **{"X-Signature": "0"}))
    assert bad_head.status_code == 403 and bad_head.content == b""
    for path in ("/files/blob/", "/files/blob/../../secret.key", "/files/blob/%00"):
        r = await http.get(path)
        assert r.status_code in (403, 404), (path, r.status_code)


async def test_a_put_finishing_after_its_url_expired_is_refused(live_server: LiveServer) -> None:
    """A PUT begun in time may finish up to PUT_SLACK late; later than that the sweeper may
    already have passed, so the body is refused and nothing is left."""
    import time

    key = "org_x/uploads/file_late/late.bin"

    async def body() -> Any:
        yield b"late"

    store = storage.current()
    with pytest.raises(Exception) as refused:
        await store.write(key, body(), 10, deadline=time.time() - 1)  # type: ignore[attr-defined]
    assert getattr(refused.value, "code", None) == "url_expired"
    assert not _object_path(live_server.settings, key).exists()
    assert await store.write(key, body(), 10, deadline=time.time() + 60) == 4  # type: ignore[attr-defined]
    await store.delete_prefix("org_x/uploads/file_late/")
    assert not _object_path(live_server.settings, key).parent.exists()
