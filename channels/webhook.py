"""The ``webhook`` channel: signed HTTP POSTs (agent webhooks, callbacks).

Every request carries::

    X-Switchboard-Event:     message.created
    X-Switchboard-Delivery:  dlv_...            (the same on every retry)
    X-Switchboard-Timestamp: 1718000000         (unix seconds of this attempt)
    X-Switchboard-Signature: v1=<hex>[,v1=<hex>]

where each ``v1`` is HMAC-SHA256(secret, "<timestamp>.<raw body>") in hex, one per signing
secret that is currently valid (two during the 24 hours after a rotation).

Private addresses are refused twice: when a URL is saved (``check_url``: every address the
host resolves to must be global) and when a connection is made (``PublicResolver``, the
connector's resolver, drops every non-global address), so a name that is re-pointed inside
the network after it was checked (DNS rebinding) cannot be reached. IP literals never reach
a resolver; ``deliver`` checks them itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import ThreadedResolver

from .base import Channel, DeliveryResult, Outbound

__all__ = [
    "WebhookChannel",
    "PublicResolver",
    "RefusedAddress",
    "UnsafeURL",
    "check_url",
    "signature_header",
    "host_refused",
    "read_capped",
    "retry_after_seconds",
    "USER_AGENT",
    "DNS_TIMEOUT_SECONDS",
    "MAX_RESPONSE_BYTES",
]

USER_AGENT = "Switchboard-Webhooks/1"
_RETRYABLE_STATUS = {408, 425, 429}
DNS_TIMEOUT_SECONDS = 5.0
# A receiver's answer is read up to this much (the rest is dropped with the connection), so a
# hostile endpoint cannot make the worker buffer an endless body.
MAX_RESPONSE_BYTES = 64 * 1024
# How much of a non-2xx answer is kept in the delivery log's error.
ERROR_EXCERPT_CHARS = 300


class UnsafeURL(ValueError):
    """A URL we refuse to call: not http(s), no host, or a private address."""


class RefusedAddress(OSError):
    """Raised by ``PublicResolver`` when a host has no global address left."""


def _is_private(address: str) -> bool:
    """Anything but a global unicast address (private, loopback, link-local, shared, ...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64 or ip in _LOCAL_NAT64:  # NAT64 prefixes embed an IPv4 address
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif any(ip in net for net in _NOT_GLOBAL_V6):
            return True
    return not ip.is_global or ip.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# Counted as global by older Pythons, but reach IPv4 or site-local hosts through translation.
_NOT_GLOBAL_V6 = tuple(
    ipaddress.IPv6Network(n) for n in ("::/96", "::ffff:0:0:0/96", "fec0::/10")
)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class PublicResolver(AbstractResolver):
    """The connector's resolver: asks ``inner`` (the system resolver by default) with a time
    limit and keeps only global addresses, unless private ones are allowed."""

    def __init__(
        self, inner: AbstractResolver | None = None, *, allow_private: bool = False, timeout: float = DNS_TIMEOUT_SECONDS
    ) -> None:
        self._inner = inner
        self.allow_private = allow_private
        self.timeout = timeout

    def _resolver(self) -> AbstractResolver:
        if self._inner is None:
            self._inner = ThreadedResolver()
        return self._inner

    async def lookup(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC) -> list[ResolveResult]:
        """Every address of ``host``, unfiltered (``OSError`` when it does not resolve in time)."""
        try:
            return await asyncio.wait_for(self._resolver().resolve(host, port, family), timeout=self.timeout)
        except asyncio.TimeoutError as exc:
            raise OSError(f"host '{host}' did not resolve within {self.timeout:g} s") from exc

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        infos = await self.lookup(host, port, family)
        if self.allow_private:
            return infos
        kept = [info for info in infos if not _is_private(info["host"])]
        if not kept:
            raise RefusedAddress(f"host '{host}' resolves to a private, loopback or link-local address")
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def check_scheme(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:  # e.g. "http://[::1"
        raise UnsafeURL("is not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("must be an http or https URL")
    if not host:
        raise UnsafeURL("must include a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeURL("has an invalid port") from exc
    return host, port


async def check_url(
    url: str, *, allow_private: bool, resolver: AbstractResolver | None = None, timeout: float = DNS_TIMEOUT_SECONDS
) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts with any private address."""
    host, port = check_scheme(url)
    if allow_private:
        return
    if _ip_literal(host):
        if _is_private(host):
            raise UnsafeURL(f"host '{host}' is a private, loopback or link-local address")
        return
    lookup = PublicResolver(resolver, timeout=timeout)
    try:
        infos = await lookup.lookup(host, port)
    except OSError as exc:
        raise UnsafeURL(f"host '{host}' does not resolve ({exc})") from exc
    finally:
        if resolver is None:
            await lookup.close()
    if not infos or any(_is_private(info["host"]) for info in infos):
        raise UnsafeURL(f"host '{host}' resolves to a private, loopback or link-local address")


def host_refused(url: str) -> bool:
    """True when ``url``'s host is a private IP literal, read as aiohttp will read it: literals
    it connects to without the resolver (full-width digits normalize to ASCII ones, for
    instance) are checked here; names are checked by ``PublicResolver`` at connect time."""
    host = yarl.URL(url).host or ""
    return is_ip_address(host) and _is_private(host)


def signature_header(secrets: tuple[str, ...], timestamp: str, body: bytes) -> str:
    signed = timestamp.encode() + b"." + body
    return ",".join(
        "v1=" + hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets
    )


def retry_after_seconds(value: str | None) -> float | None:
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

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        allow_private: bool = False,
        max_connections: int = 64,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections,
                resolver=PublicResolver(resolver, allow_private=allow_private, timeout=min(timeout, DNS_TIMEOUT_SECONDS)),
            ),
            timeout=aiohttp.ClientTimeout(total=timeout),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            check_scheme(outbound.target)
            if not self.allow_private and host_refused(outbound.target):
                host = yarl.URL(outbound.target).host
                raise UnsafeURL(f"host '{host}' is a private, loopback or link-local address")
        except UnsafeURL as exc:
            return DeliveryResult("failed", elapsed(), error=f"refused: URL {exc}")
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
                outbound.target, data=outbound.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after_header = response.headers.get("Retry-After")
                answer = await read_capped(response)
        except asyncio.TimeoutError:
            return DeliveryResult("retry", elapsed(), error="timeout: no response in time")
        except (aiohttp.InvalidURL, ValueError) as exc:  # retrying won't help
            return DeliveryResult("failed", elapsed(), error=f"request error: invalid URL {exc}")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):  # re-pointed inside the network
                return DeliveryResult("failed", elapsed(), error=f"refused: URL {exc.os_error}")
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc or type(exc).__name__}")
        if 200 <= status < 300:
            return DeliveryResult("delivered", elapsed(), status_code=status)
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        excerpt = answer[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace").strip()
        return DeliveryResult(
            "retry" if retryable else "failed",
            elapsed(),
            status_code=status,
            error=f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}",
            retry_after=retry_after_seconds(retry_after_header) if retryable else None,
        )

    async def close(self) -> None:
        await self._session.close()


async def read_capped(response: aiohttp.ClientResponse) -> bytes:
    """At most ``MAX_RESPONSE_BYTES`` of the body; an unread rest closes the connection."""
    chunks, size = [], 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await response.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
