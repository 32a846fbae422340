"""The S3 backend against moto's S3 server on loopback: real presigned URLs (the bytes go
between the client and the bucket, never through the gateway), HEAD on confirm, DELETE by
the sweeper, and a 502 when the store cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from datetime import timedelta

from app.kernel.config import Settings
from app.kernel.timefmt import utcnow
from app.services import files as file_service
from app.store.models import StoredFile
from tests.conftest import LiveServer, Orgs
from tests.files.conftest import FileTable, request_upload, upload_file

BUCKET = "switchboard-files"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from tests.conftest import free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
    try:
        client.create_bucket(Bucket=BUCKET)
    except ClientError:
        pass
    return client


@pytest.fixture
def settings(settings: Settings, moto_url: str, s3: Any) -> Settings:
    return settings.with_overrides(s3_bucket=BUCKET, s3_endpoint_url=moto_url, s3_region="us-east-1")


async def test_presigned_flow_on_s3(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable, s3: Any, moto_url: str) -> None:
    h = live_orgs.a.headers
    data = b"%PDF report " * 1000
    r = await request_upload(http, h, table_a, size=len(data))
    assert r.status_code == 200, r.text
    up = r.json()["data"]
    url = urlsplit(up["upload_url"])
    assert f"{url.scheme}://{url.netloc}" == moto_url  # straight to the bucket
    assert "X-Amz-Signature=" in url.query and "X-Amz-Expires=3600" in url.query
    put = await http.put(up["upload_url"], content=data, headers=up["upload_headers"])
    assert put.status_code == 200, put.text
    r = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert r.status_code == 200, r.text
    confirmed = r.json()["data"]
    key = confirmed["file_value"]["key"]
    assert confirmed["file_value"]["bucket"] == BUCKET and key.startswith(f"{live_orgs.a.id}/files/")
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == len(data)

    download = (await http.get(f"/api/v1/files/{confirmed['id']}/download", headers=h)).json()["data"]
    assert download["download_url"].startswith(moto_url + "/")
    got = await http.get(download["download_url"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''report.pdf"

    assert (await http.delete(f"/api/v1/files/{confirmed['id']}", headers=h)).status_code == 204
    s3.head_object(Bucket=BUCKET, Key=key)  # kept through the retention period
    file_service.configure(live_server.settings.with_overrides(file_retention_seconds=0))
    try:
        await file_service.sweep()
    finally:
        file_service.configure(live_server.settings)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)


async def test_confirm_checks_the_object_in_the_bucket(live_server: LiveServer, live_orgs: Orgs, http: httpx.AsyncClient, table_a: FileTable, s3: Any) -> None:
    h = live_orgs.a.headers
    up = (await request_upload(http, h, table_a, size=1000)).json()["data"]
    missing = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert missing.status_code == 422
    assert (await http.put(up["upload_url"], content=b"x" * 500, headers=up["upload_headers"])).status_code == 200
    short = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert short.status_code == 422 and short.json()["error"]["details"] == {"size_bytes": ["declared 1000 bytes, uploaded 500"]}
    # S3 takes any size at the URL: a far bigger object is refused at confirm, and not kept
    up = (await request_upload(http, h, table_a, size=10)).json()["data"]
    assert (await http.put(up["upload_url"], content=b"x" * 100_000, headers=up["upload_headers"])).status_code == 200
    big = await http.post("/api/v1/files/confirm", json={"upload_token": up["upload_token"]}, headers=h)
    assert big.status_code == 422
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not any(up["file_id"] in k for k in keys)
    other = await upload_file(http, h, table_a, b"fine")
    assert other["file_value"]["size"] == 4


@pytest.fixture
def dead_store(settings: Settings) -> Settings:
    from tests.conftest import free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    return settings.with_overrides(s3_endpoint_url=f"http://127.0.0.1:{port}")


async def test_an_unreachable_store_is_a_502(dead_store: Settings, tmp_path: Path, live_orgs_dead: Any) -> None:
    server, orgs = live_orgs_dead
    h = orgs.a.headers
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        from tests.files.conftest import file_table

        where = await file_table(http, h)
        up = await request_upload(http, h, where, size=10)
        assert up.status_code == 200  # signing needs no connection
        r = await http.post("/api/v1/files/confirm", json={"upload_token": up.json()["data"]["upload_token"]}, headers=h)
        assert r.status_code == 502 and r.json()["error"]["code"] == "storage_error"
        assert (await http.get("/api/v1/files", headers=h)).json()["meta"]["total"] == 0  # nothing recorded
    # the sweeper cannot reach the store either: it leaves the row for later instead of spinning
    file_id = up.json()["data"]["file_id"]
    await StoredFile.filter(id=file_id).update(upload_expires_at=utcnow() - file_service.UPLOAD_GRACE - timedelta(seconds=1))
    assert await file_service.sweep() == 0
    row = await StoredFile.get(id=file_id)
    assert row.status == "expired" and row.retry_at is not None and row.retry_at > utcnow()
    assert await StoredFile.filter(_due_now()).count() == 0  # nothing due until the retry time


@pytest.fixture
async def live_orgs_dead(dead_store: Settings) -> Any:
    from tests.chat.conftest import running_server
    from tests.conftest import make_orgs

    async with running_server(dead_store) as server:
        yield server, await make_orgs()


def _due_now() -> Any:
    return file_service._due(utcnow())
