"""The ``apns`` channel: Apple Push Notification service over HTTP/2 with aioapns.

Token authentication: an ES256 provider JWT made from the team's .p8 key (aioapns renews
it every 30 minutes). One client per environment (production, sandbox), each keeping its
HTTP/2 connections open and multiplexing every push over them.

An item's target is the device as resolved at attempt time, JSON ``{"token", "environment",
"bundle_id"}``; its headers carry ``apns-push-type``, ``apns-priority`` and ``apns-expiration``
(absolute unix seconds). The topic is the device's bundle id (or the configured one), with
``.push-type.liveactivity`` appended for Live Activity pushes.

Answers: 200 delivered; 410 Unregistered, 400 BadDeviceToken and DeviceTokenNotForTopic
gone (the device is forgotten); other 400s and 413 failed; 403 (provider token problems),
429, 5xx and transport errors are retried.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsProductionClientProtocol
from hpack import Encoder

from .base import Channel, DeliveryResult, Outbound

__all__ = ["ApnsChannel", "ApnsHost", "APPLE_HOSTS", "LIVE_ACTIVITY_SUFFIX", "MAX_PAYLOAD_BYTES", "payload_size"]

APPLE_HOSTS = {"production": "https://api.push.apple.com", "sandbox": "https://api.sandbox.push.apple.com"}
LIVE_ACTIVITY_SUFFIX = ".push-type.liveactivity"
MAX_PAYLOAD_BYTES = 4096
_GONE_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}
_NAMESPACE = uuid.UUID("8f0f5c8e-5b1e-4b8e-9a53-3c1f2b7d9e10")


def payload_size(payload: dict[str, Any]) -> int:
    """Bytes on the wire, serialised exactly as aioapns sends it."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


async def _quiet(request: NotificationRequest, result: Any) -> None:
    return None


class _PlainEncoder(Encoder):
    """HPACK without Huffman coding (valid for every decoder): the per-push values (path,
    apns-id) are never repeated, and Huffman-coding them was the largest part of a send."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        return bytes(super().encode(headers, huffman=False))


class _Protocol(APNsProductionClientProtocol):
    """aioapns' protocol, made cheaper per push and with two repairs.

    * Its headers are ours and well-formed: h2 skips validating and normalising them.
    * Pushes sent in the same turn of the loop leave in one TLS write (aioapns writes, and
      re-arms its idle timer, once per push).

    * It never opens the flow-control window again: error answers (each has a body) would
      fill it after some two thousand, and every later answer would hang.
    * An answer that comes after its caller gave up (the outbox's per-attempt timeout)
      would be set on a cancelled future; the error raised inside ``data_received`` kills
      the connection and every push in flight on it. Such answers are dropped, and so are
      the bookkeeping entries aioapns would otherwise keep for the life of the connection.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn.config.validate_outbound_headers = False
        self.conn.config.normalize_outbound_headers = False
        self.conn.encoder = _PlainEncoder()
        self._flush_pending = False

    def flush(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_pending = False
        if self.transport is not None and not self.transport.is_closing():
            super().flush()

    def on_stream_ended(self, stream_id: int) -> None:
        self.request_streams.pop(stream_id, None)  # kept forever for 200 answers otherwise
        super().on_stream_ended(stream_id)

    def connection_lost(self, exc: Exception | None) -> None:
        for notification_id in [n for n, f in self.requests.items() if f.done()]:
            del self.requests[notification_id]
        super().connection_lost(exc)

    def on_response_received(self, headers: dict[bytes, bytes]) -> None:
        if self._abandoned(headers.get(b"apns-id", b"").decode()):
            return
        super().on_response_received(headers)

    def on_data_received(self, raw_data: bytes, stream_id: int) -> None:
        self.conn.acknowledge_received_data(len(raw_data), stream_id)
        notification_id = self.request_streams.get(stream_id)
        if notification_id is not None and self._abandoned(notification_id):
            self.request_streams.pop(stream_id, None)
            return
        super().on_data_received(raw_data, stream_id)

    def _abandoned(self, notification_id: str) -> bool:
        future = self.requests.get(notification_id)
        if future is None or not future.done():
            return False
        self.requests.pop(notification_id, None)
        self.request_statuses.pop(notification_id, None)
        return True


@dataclass(frozen=True)
class ApnsHost:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> "ApnsHost":
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"APNs URL must be https://host[:port], not {url!r}")
        return cls(parts.hostname, parts.port or 443)


class ApnsChannel(Channel):
    def __init__(
        self,
        *,
        key: str,
        key_id: str,
        team_id: str,
        topic: str,
        hosts: dict[str, ApnsHost],
        ca_file: str | None = None,
        timeout: float = 10.0,
        max_connections: int = 4,
    ) -> None:
        self.timeout = timeout
        self._key, self._key_id, self._team_id, self._topic = key, key_id, team_id, topic
        self._hosts = hosts
        self._ca_file = ca_file or None
        self._max_connections = max_connections
        self._clients: dict[str, APNs] = {}

    def _client(self, environment: str) -> APNs:
        client = self._clients.get(environment)
        if client is None:
            target = self._hosts[environment]
            context = ssl.create_default_context(cafile=self._ca_file)
            context.set_alpn_protocols(["h2"])  # aioapns speaks HTTP/2 by prior knowledge; say so in the handshake
            client = APNs(
                key=self._key,
                key_id=self._key_id,
                team_id=self._team_id,
                topic=self._topic or "-",
                max_connections=self._max_connections,
                max_connection_attempts=1,  # the outbox retries, with backoff
                ssl_context=context,
                err_func=_quiet,  # every answer is recorded with its delivery; no log line each
            )
            # aioapns dials protocol_class.APNS_SERVER:APNS_PORT and sends it as the host.
            client.pool.protocol_class = type(
                f"APNs_{environment}", (_Protocol,), {"APNS_SERVER": target.host, "APNS_PORT": target.port}
            )
            self._clients[environment] = client
        return client

    async def deliver(self, outbound: Outbound) -> DeliveryResult:
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            device = json.loads(outbound.target)
            token, environment = str(device["token"]), str(device.get("environment") or "production")
            message = json.loads(outbound.body)
        except (ValueError, KeyError, TypeError) as exc:
            return DeliveryResult("failed", elapsed(), error=f"not an APNs delivery: {exc}")
        if environment not in self._hosts:
            return DeliveryResult("failed", elapsed(), error=f"unknown APNs environment {environment!r}")
        headers = outbound.headers
        push_type = headers.get("apns-push-type", "alert")
        topic = device.get("bundle_id") or self._topic
        if not topic:
            return DeliveryResult("failed", elapsed(), error="no APNs topic: the device has no bundle id and SWITCHBOARD_APNS_TOPIC is unset")
        if push_type == "liveactivity":
            topic += LIVE_ACTIVITY_SUFFIX
        ttl = None
        if headers.get("apns-expiration"):
            ttl = int(headers["apns-expiration"]) - int(time.time())
            if ttl <= 0:
                return DeliveryResult("failed", elapsed(), error="expired before it could be delivered")
        request = NotificationRequest(
            device_token=token,
            message=message,
            notification_id=str(uuid.uuid5(_NAMESPACE, outbound.delivery_id)),  # the same on every retry
            priority=int(headers.get("apns-priority", "10")),
            push_type=PushType(push_type),
            time_to_live=ttl,
            collapse_key=headers.get("apns-collapse-id"),
            apns_topic=topic,
        )
        try:
            result = await self._client(environment).send_notification(request)
        except Exception as exc:  # noqa: BLE001 - aioapns raises transport errors of many kinds
            return DeliveryResult("retry", elapsed(), error=f"connection error: {exc or type(exc).__name__}")
        status = int(result.status) if str(result.status).isdigit() else 0
        if status == 200:
            return DeliveryResult("delivered", elapsed(), status_code=200)
        reason = result.description or ""
        error = f"APNs {status}: {reason}" if reason else f"APNs {status}"
        if status == 410 or (status == 400 and reason in _GONE_REASONS):
            return DeliveryResult("gone", elapsed(), status_code=status, error=error)
        if status in (403, 429) or status >= 500 or status == 0:
            return DeliveryResult("retry", elapsed(), status_code=status or None, error=error)
        return DeliveryResult("failed", elapsed(), status_code=status, error=error)

    async def close(self) -> None:
        for client in self._clients.values():
            client.pool.close()
        self._clients.clear()
