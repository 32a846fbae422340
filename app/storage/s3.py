"""Files in an S3 bucket (or any S3-compatible store at ``SWITCHBOARD_S3_ENDPOINT_URL``).

Upload and download URLs are S3's own presigned URLs, so the bytes go between the client and
the bucket. The PUT URL signs the content type, so an upload with another type is refused by
S3. Credentials come from the standard AWS variables and files, through aiobotocore."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..kernel.config import Settings
from ..kernel.errors import StorageError

__all__ = ["S3Storage"]


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")


class S3Storage:
    kind = "s3"

    def __init__(self, settings: Settings) -> None:
        self.bucket = settings.s3_bucket
        self._endpoint = settings.s3_endpoint_url or None
        self._region = settings.s3_region or None
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = Config(signature_version="s3v4", retries={"max_attempts": 3, "mode": "standard"})
                    self._client = await self._stack.enter_async_context(
                        get_session().create_client(
                            "s3", region_name=self._region, endpoint_url=self._endpoint, config=config
                        )
                    )
        return self._client

    async def _call(self, what: str, op: str, *, missing_ok: bool = False, **params: Any) -> Any:
        """The S3 operation's answer; None when ``missing_ok`` and there is no such object."""
        try:
            client = await self._s3()
            return await getattr(client, op)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if missing_ok and _missing(exc):
                return None
            raise StorageError(f"S3 could not {what}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 could not {what}: {exc}") from exc

    async def upload_url(
        self, key: str, *, content_type: str, size: int, expires_in: int, base_url: str
    ) -> tuple[str, dict[str, str]]:
        params = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        url = await self._presign("put_object", params, expires_in)
        return url, {"Content-Type": content_type}

    async def download_url(
        self, key: str, *, filename: str, content_type: str, expires_in: int, base_url: str
    ) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ResponseContentType": content_type,
            "ResponseContentDisposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        }
        return await self._presign("get_object", params, expires_in)

    async def _presign(self, op: str, params: dict[str, Any], expires_in: int) -> str:
        try:
            client = await self._s3()
            url: str = await client.generate_presigned_url(op, Params=params, ExpiresIn=expires_in)
            return url
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 could not sign a URL: {exc}") from exc

    async def size_of(self, key: str) -> int | None:
        head = await self._call("read the file", "head_object", missing_ok=True, Key=key)
        return None if head is None else int(head["ContentLength"])

    async def promote(self, src: str, dst: str) -> bool:
        """A server-side copy (the bytes stay in S3), then the source goes."""
        copied = await self._call(
            "store the file", "copy_object", missing_ok=True, Key=dst, CopySource={"Bucket": self.bucket, "Key": src}
        )
        if copied is None:
            return False
        await self.delete(src)
        return True

    async def delete(self, key: str) -> None:
        await self._call("delete the file", "delete_object", Key=key)

    async def delete_prefix(self, prefix: str) -> None:
        while True:
            listed = await self._call("list the files", "list_objects_v2", Prefix=prefix, MaxKeys=1000)
            keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
            if not keys:
                return
            await self._call("delete the files", "delete_objects", Delete={"Objects": keys, "Quiet": True})

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None
