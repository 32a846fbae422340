"""``/files/blob/<key>``: the local-disk backend's signed URLs, served as plain ASGI so bodies
stream with the server's flow control (a PUT is written as it arrives; a GET is read as it
is sent). Only the URL's signature authorizes: no API key is needed, as with S3."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from .. import storage
from ..kernel.errors import Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, SwitchboardError
from ..storage.local import BLOB_PATH, PUT_SLACK, LocalStorage

__all__ = ["handle", "BLOB_PATH"]


class _Disconnected(Exception):
    pass


async def handle(scope: dict[str, Any], receive: Any, send: Any) -> None:
    try:
        store = storage.current()
        if not isinstance(store, LocalStorage):
            raise NotFound("No such endpoint.")
        method = scope["method"]
        if method not in ("PUT", "GET", "HEAD"):
            raise MethodNotAllowed(headers={"Allow": "GET, HEAD, PUT"})
        key = scope["path"][len(BLOB_PATH):]
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        grant = store.verify(method, key, query)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if method == "PUT":
            await _put(store, grant.key, grant.max_bytes, grant.content_type, grant.expires, headers, receive, send)
        else:
            await _get(store, grant.key, grant.filename, grant.content_type, method == "HEAD", send)
    except _Disconnected:
        return
    except SwitchboardError as exc:
        await _json(send, exc.status, exc.to_body(), exc.headers, head=scope.get("method") == "HEAD")


async def _put(
    store: LocalStorage, key: str, max_bytes: int, content_type: str, expires: int, headers: dict[str, str],
    receive: Any, send: Any,
) -> None:
    sent_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and sent_type != content_type.split(";")[0].strip():
        raise Forbidden(f"Send the Content-Type the upload was signed for: {content_type}.", code="content_type_mismatch")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The upload is larger than the {max_bytes} bytes declared for it.")

    async def body() -> AsyncIterator[bytes]:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    size = await store.write(key, body(), max_bytes, deadline=expires + PUT_SLACK)
    await _json(send, 200, {"success": True, "size_bytes": size})


async def _get(store: LocalStorage, key: str, filename: str, content_type: str, head: bool, send: Any) -> None:
    size, chunks = await store.read(key)
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}" if filename else "attachment"
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", (content_type or "application/octet-stream").encode("latin-1")),
            (b"content-length", str(size).encode()),
            (b"content-disposition", disposition.encode("latin-1")),
            (b"cache-control", b"private, max-age=3600"),
            (b"x-content-type-options", b"nosniff"),
        ],
    })
    if head:
        await chunks.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": b""})
        return
    async for chunk in chunks:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _json(
    send: Any, status: int, payload: Mapping[str, Any], extra: dict[str, str] | None = None, *, head: bool = False
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})

