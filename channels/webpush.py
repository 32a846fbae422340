"""The ``webpush`` channel: Web Push (RFC 8030) with aes128gcm bodies (RFC 8291) and VAPID
(RFC 8292).

pywebpush encrypts each body for its subscription; the request goes out through one pooled
aiohttp session with the webhook channel's address rules (a subscription endpoint is a URL a
user gave us: private addresses are refused unless allowed). The VAPID JWT is signed once
per push service origin and reused until an hour before it expires.

An item's target is the subscription as resolved at attempt time, JSON ``{"endpoint",
"p256dh"}``, with its auth secret as the item's secret (so it never lands in the delivery
log); its headers carry ``TTL`` and ``Urgency``.

Answers: 2xx delivered; 404 and 410 gone (the subscription is forgotten); 429 and 5xx
retried (honouring Retry-After); other 4xx failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from .base import Channel, DeliveryResult, Outbound
from .webhook import (
    ERROR_EXCERPT_CHARS, PublicResolver, UnsafeURL, check_scheme, host_refused, read_capped, retry_after_seconds,
)

__all__ = ["WebPushChannel", "VAPID_LIFETIME_SECONDS"]

VAPID_LIFETIME_SECONDS = 12 * 3600
_RENEW_BEFORE_SECONDS = 3600
USER_AGENT = "Switchboard-Push/1"


class WebPushChannel(Channel):
    def __init__(
        self, *, private_key: Any, subject: str, timeout: float = 10.0, allow_private: bool = False, max_connections: int = 64
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self._vapid = Vapid02(private_key=private_key)
        self._subject = subject
        self._headers: dict[str, tuple[int, dict[str, str]]] = {}  # origin -> (exp, VAPID headers)
        self._session: aiohttp.ClientSession | None = None
        self._max_connections = max_connections

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections, resolver=PublicResolver(allow_private=self.allow_private)
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=False,
            )
        return self._session

    def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        now = int(time.time())
        cached = self._headers.get(origin)
        if cached is None or cached[0] - now < _RENEW_BEFORE_SECONDS:
            exp = now + VAPID_LIFETIME_SECONDS
            # A fresh dict each time: py_vapid may add to the claims it is given.
            signed = self._vapid.sign({"aud": origin, "exp": exp, "sub": self._subject})
            cached = self._headers[origin] = (exp, {"Authorization": signed["Authorization"]})
        return cached[1]

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            sub = json.loads(outbound.target)
            endpoint = str(sub["endpoint"])
            check_scheme(endpoint)
            if not self.allow_private and host_refused(endpoint):
                raise UnsafeURL("the endpoint is a private, loopback or link-local address")
            auth = outbound.secrets[0] if outbound.secrets else sub["auth"]
            encoded = WebPusher({"endpoint": endpoint, "keys": {"p256dh": sub["p256dh"], "auth": auth}}).encode(
                outbound.body, "aes128gcm"
            )
        except UnsafeURL as exc:
            return DeliveryResult("failed", elapsed(), error=f"refused: {exc}")
        except (ValueError, KeyError, TypeError, WebPushException) as exc:
            return DeliveryResult("failed", elapsed(), error=f"not a Web Push subscription: {exc}")
        headers = {
            **outbound.headers,
            **self._vapid_headers(endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        headers.setdefault("TTL", "0")
        try:
            async with self._http().post(endpoint, data=encoded["body"], headers=headers, allow_redirects=False) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                answer = await read_capped(response)
        except asyncio.TimeoutError:
            return DeliveryResult("retry", elapsed(), error="timeout: no response in time")
        except aiohttp.ClientConnectorError as exc:
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc or type(exc).__name__}")
        if 200 <= status < 300:
            return DeliveryResult("delivered", elapsed(), status_code=status)
        excerpt = answer[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
        error = f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"
        if status in (404, 410):
            return DeliveryResult("gone", elapsed(), status_code=status, error=error)
        if status == 429 or status >= 500:
            return DeliveryResult("retry", elapsed(), status_code=status, error=error, retry_after=retry_after_seconds(retry_after))
        return DeliveryResult("failed", elapsed(), status_code=status, error=error)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
