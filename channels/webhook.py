"""Signed HTTP POSTs: agent webhooks, callbacks, organization webhooks.

Every request carries::

    X-Switchboard-Event:     message.created
    X-Switchboard-Delivery:  dlv_...            (the same on every retry)
    X-Switchboard-Timestamp: 1718000000         (unix seconds of this attempt)
    X-Switchboard-Signature: v1=<hex>[,v1=<hex>]

where each ``v1`` is HMAC-SHA256(secret, "<timestamp>.<raw body>") in hex, one per signing
secret that is currently valid (two during the 24 hours after a rotation).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import ipaddress
import time
from urllib.parse import urlsplit

import aiohttp

from .base import Channel, DeliveryResult, Outbound

__all__ = ["WebhookChannel", "UnsafeURL", "check_url", "signature_header", "USER_AGENT"]

USER_AGENT = "Switchboard-Webhooks/1"
_RETRYABLE_STATUS = {408, 425, 429}


class UnsafeURL(ValueError):
    """A URL we refuse to call: not http(s), no host, or a private address."""


def _is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_scheme(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeURL("must include a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL("has an invalid port") from exc
    return parts.hostname, port


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts resolving to private addresses."""
    host, port = check_scheme(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, proto=6)
    except OSError as exc:
        raise UnsafeURL(f"host '{host}' does not resolve") from exc
    for info in infos:
        if _is_private(str(info[4][0])):
            raise UnsafeURL(
                f"host '{host}' resolves to a private, loopback or link-local address"
            )


def signature_header(secrets: tuple[str, ...], timestamp: str, body: bytes) -> str:
    signed = timestamp.encode() + b"." + body
    return ",".join(
        "v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WebhookChannel(Channel):
    """POSTs through one pooled aiohttp session (its per-request cost is a fraction of
    httpx's, which matters at hundreds of deliveries a second)."""

    def __init__(self, *, timeout: float = 5.0, allow_private: bool = False, max_connections: int = 64) -> None:
        self.allow_private = allow_private
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            await check_url(outbound.url, allow_private=self.allow_private)
        except UnsafeURL as exc:
            return DeliveryResult(ok=False, status_code=None, latency_ms=elapsed(), error=f"refused: URL {exc}")
        timestamp = str(int(time.time()))
        headers = {
            **outbound.headers,
            "Content-Type": "application/json",
            "X-Switchboard-Event": outbound.event,
            "X-Switchboard-Delivery": outbound.delivery_id,
            "X-Switchboard-Timestamp": timestamp,
        }
        if outbound.secrets:
            headers["X-Switchboard-Signature"] = signature_header(outbound.secrets, timestamp, outbound.body)
        try:
            async with self._session.post(
                outbound.url, data=outbound.body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
                retry_after_header = response.headers.get("Retry-After")
        except asyncio.TimeoutError:
            return DeliveryResult(ok=False, status_code=None, latency_ms=elapsed(), error="timeout: no response in time", retryable=True)
        except aiohttp.InvalidURL as exc:  # retrying won't help
            return DeliveryResult(ok=False, status_code=None, latency_ms=elapsed(), error=f"request error: invalid URL {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryResult(ok=False, status_code=None, latency_ms=elapsed(), error=f"connection error: {exc or type(exc).__name__}", retryable=True)
        if 200 <= status < 300:
            return DeliveryResult(ok=True, status_code=status, latency_ms=elapsed())
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        return DeliveryResult(
            ok=False,
            status_code=status,
            latency_ms=elapsed(),
            error=f"HTTP {status}",
            retryable=retryable,
            retry_after=_retry_after(retry_after_header) if retryable else None,
        )

    async def close(self) -> None:
        await self._session.close()
