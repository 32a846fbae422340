"""Files on local disk under ``<data dir>/files``, served by the gateway itself.

Upload and download URLs point at ``/files/blob/<key>`` and carry an expiry and an
HMAC-SHA256 signature (a key derived from the server's secret key) over the method, the key,
the expiry and what the URL allows: the most bytes a PUT may write and its content type, or
the name and type a GET answers with. Changing any of them, or using the URL after its
expiry, is a 403. Bodies stream through in chunks: no file is ever held in memory whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from ..kernel import crypto
from ..kernel.config import Settings
from ..kernel.errors import Forbidden, NotFound, PayloadTooLarge, StorageError

__all__ = ["LocalStorage", "Grant", "BLOB_PATH", "CHUNK", "PUT_SLACK"]

BLOB_PATH = "/files/blob/"
CHUNK = 256 * 1024  # read and written in pieces this big (one thread hop each)
# A PUT begun before its URL expired may finish this long after (the sweeper waits longer).
PUT_SLACK = 60


@dataclass(frozen=True)
class Grant:
    """What a verified URL allows."""

    method: str
    key: str
    max_bytes: int  # PUT: the size declared at upload
    content_type: str
    filename: str  # GET: the name the download is saved as
    expires: int  # Unix time


def _sign(fields: list[str]) -> str:
    return hmac.new(crypto.derived_key("files"), "\n".join(fields).encode(), hashlib.sha256).hexdigest()


class LocalStorage:
    kind = "local"

    def __init__(self, settings: Settings) -> None:
        self.root = (Path(settings.data_dir) / "files").resolve()
        self.bucket = "local"

    # ---------------------------------------------------------------- URLs

    def _url(self, base_url: str, method: str, key: str, expires_in: int, *, max_bytes: int = 0,
             content_type: str = "", filename: str = "") -> str:
        expires = str(int(time.time()) + expires_in)
        sig = _sign([method, key, expires, str(max_bytes), content_type, filename])
        query = {"X-Expires": expires, "X-Type": content_type, "X-Signature": sig}
        if method == "PUT":
            query["X-Max"] = str(max_bytes)
        else:
            query["X-Name"] = filename
        return f"{base_url.rstrip('/')}{BLOB_PATH}{quote(key)}?{urlencode(query)}"

    async def upload_url(
        self, key: str, *, content_type: str, size: int, expires_in: int, base_url: str
    ) -> tuple[str, dict[str, str]]:
        url = self._url(base_url, "PUT", key, expires_in, max_bytes=size, content_type=content_type)
        return url, {"Content-Type": content_type}

    async def download_url(
        self, key: str, *, filename: str, content_type: str, expires_in: int, base_url: str
    ) -> str:
        return self._url(base_url, "GET", key, expires_in, content_type=content_type, filename=filename)

    def verify(self, method: str, key: str, query: dict[str, str]) -> Grant:
        """The grant of a signed URL; 403 when it was changed or has expired."""
        method = "GET" if method == "HEAD" else method
        max_bytes = query.get("X-Max", "0") if method == "PUT" else "0"
        content_type = query.get("X-Type", "")
        filename = query.get("X-Name", "") if method == "GET" else ""
        expires = query.get("X-Expires", "")
        expected = _sign([method, key, expires, max_bytes, content_type, filename])
        if not hmac.compare_digest(expected, query.get("X-Signature", "")):
            raise Forbidden("The URL's signature does not match.", code="invalid_signature")
        if not expires.isdigit() or int(expires) < time.time():
            raise Forbidden("The URL has expired; ask for a new one.", code="url_expired")
        return Grant(method, key, int(max_bytes) if max_bytes.isdigit() else 0, content_type, filename, int(expires))

    # ---------------------------------------------------------------- objects

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise NotFound("No such file.")
        return path

    async def write(self, key: str, chunks: AsyncIterator[bytes], max_bytes: int, *, deadline: float | None = None) -> int:
        """Store the streamed body as ``key`` (whole or not at all); 413 past ``max_bytes``;
        403 when the body ends after ``deadline`` (a Unix time: the sweeper may have moved on)."""
        path = self._path(key)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        written = 0
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            f = await asyncio.to_thread(open, tmp, "wb")
            try:
                pending: list[bytes] = []
                buffered = 0
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise PayloadTooLarge(f"The upload is larger than the {max_bytes} bytes declared for it.")
                    pending.append(chunk)
                    buffered += len(chunk)
                    if buffered >= CHUNK:
                        await asyncio.to_thread(_write_all, f, pending)
                        pending, buffered = [], 0
                if pending:
                    await asyncio.to_thread(_write_all, f, pending)
            finally:
                await asyncio.to_thread(f.close)
            if deadline is not None and time.time() > deadline:
                raise Forbidden("The upload URL expired while the body was arriving; ask for a new one.", code="url_expired")
            await asyncio.to_thread(os.replace, tmp, path)
        except OSError as exc:
            raise StorageError(f"Could not store the file: {exc.strerror or exc}") from exc
        finally:
            if tmp.exists():
                tmp.unlink(missing_ok=True)
        return written

    async def read(self, key: str) -> tuple[int, AsyncIterator[bytes]]:
        """The object's size and its bytes in chunks; 404 when there is none."""
        path = self._path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFound("No such file.") from None
        except OSError as exc:
            raise StorageError(f"Could not read the file: {exc.strerror or exc}") from exc
        size = os.fstat(f.fileno()).st_size

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while data := await asyncio.to_thread(f.read, CHUNK):
                    yield data
            finally:
                f.close()

        return size, chunks()

    async def size_of(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self._path(key).stat)).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"Could not read the file: {exc.strerror or exc}") from exc

    async def promote(self, src: str, dst: str) -> bool:
        source, target = self._path(src), self._path(dst)
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread(os.replace, source, target)
        except FileNotFoundError:
            await asyncio.to_thread(_remove_folders, target.parent, self.root)
            return False
        except OSError as exc:
            raise StorageError(f"Could not store the file: {exc.strerror or exc}") from exc
        await asyncio.to_thread(_remove_folders, source.parent, self.root)
        return True

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            await asyncio.to_thread(_remove_folders, path.parent, self.root)
        except OSError as exc:
            raise StorageError(f"Could not delete the file: {exc.strerror or exc}") from exc

    async def delete_prefix(self, prefix: str) -> None:
        folder = self._path(prefix.rstrip("/"))
        try:
            await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=False)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"Could not delete the file: {exc.strerror or exc}") from exc
        await asyncio.to_thread(_remove_folders, folder.parent, self.root)

    async def close(self) -> None:
        return None


def _write_all(f: BinaryIO, pieces: list[bytes]) -> None:
    for piece in pieces:
        f.write(piece)


def _remove_folders(folder: Path, root: Path) -> None:
    """Remove a file's own folders once empty (keys are <org>/files/<file id>/<attempt>/<name>
    and <org>/uploads/<file id>/<name>); the shared <org>/files and <org>/uploads stay."""
    while folder.is_relative_to(root) and len(folder.relative_to(root).parts) > 2:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
