"""Object storage for files, behind one interface: local disk under the data directory (the
embedded default, which serves its own signed URLs) or an S3 bucket (real presigned URLs, so
the bytes never pass through the gateway).

Every backend failure is raised as ``StorageError`` (502 ``storage_error``)."""

from __future__ import annotations

from typing import Protocol

from ..kernel.config import Settings

__all__ = ["Storage", "configure", "current", "close"]


class Storage(Protocol):
    kind: str  # "local" | "s3"
    bucket: str

    async def upload_url(
        self, key: str, *, content_type: str, size: int, expires_in: int, base_url: str
    ) -> tuple[str, dict[str, str]]:
        """Where the client PUTs the bytes, and the headers it must send with them."""
        ...

    async def download_url(
        self, key: str, *, filename: str, content_type: str, expires_in: int, base_url: str
    ) -> str: ...

    async def size_of(self, key: str) -> int | None:
        """The stored object's size, or None when there is none."""
        ...

    async def promote(self, src: str, dst: str) -> bool:
        """Move the object at ``src`` to the new key ``dst`` (False when ``src`` has none), so
        a later write to ``src`` cannot touch it."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every object whose key starts with ``prefix`` (a file's own folder, ending
        in ``/``): what failed cleanups or late uploads may have left there."""
        ...

    async def close(self) -> None: ...


_current: Storage | None = None


def configure(settings: Settings) -> Storage:
    """Pick the backend the settings name (S3 when a bucket is set) and make it current."""
    global _current
    if settings.s3_bucket:
        from .s3 import S3Storage

        _current = S3Storage(settings)
    else:
        from .local import LocalStorage

        _current = LocalStorage(settings)
    return _current


def current() -> Storage:
    if _current is None:
        raise RuntimeError("storage is not configured")
    return _current


async def close() -> None:
    if _current is not None:
        await _current.close()
