"""A fake Web Push service (RFC 8030) on loopback that also plays the browser.

``subscribe()`` makes a subscription as a browser would (its own P-256 key pair and auth
secret), so each push can be checked for VAPID (RFC 8292) and decrypted (RFC 8291,
aes128gcm) to exactly what the sender meant. Accepted pushes land in ``received``, refused
ones in ``rejected``; ``fail(endpoint, 410)`` scripts a subscription's answer.

VAPID is required, as at every major push service (RFC 8292 leaves it optional for
subscriptions without an application server key): absent, 401; invalid, 403. A body that does
not decrypt is refused with 400 here, where a real service would accept it and the browser
drop it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.arrivals import Arrivals

__all__ = ["FakePushService", "WebPushReceived"]

URGENCIES = frozenset({"very-low", "low", "normal", "high"})
MAX_BODY = 4096  # what RFC 8030 asks every service to take; larger ones get 413
MAX_EXP = 24 * 3600  # RFC 8292: a VAPID token must not expire more than 24 h ahead
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class WebPushReceived:
    subscription: str  # its id, the last segment of the endpoint
    name: str | None
    headers: dict[str, str]  # names lowercased
    payload: Any  # the decrypted body as JSON, else as text; None without a body
    urgency: str
    ttl: int | None
    topic: str | None
    vapid: dict[str, Any]  # the verified JWT claims (empty when not verified)
    status: int
    reason: str | None
    at: float = field(default_factory=time.time)  # when it arrived (wall clock, for benchmarks)


@dataclass
class _Subscription:
    id: str
    name: str | None
    key: ec.EllipticCurvePrivateKey
    auth: bytes


@dataclass
class _Failure:
    status: int
    times: int | None
    retry_after: int | None


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class FakePushService(Arrivals[WebPushReceived]):
    def __init__(self, vapid_public_key: str | None = None) -> None:
        super().__init__("Web Push")
        # When set, every push must be signed with this key (a subscription made with an
        # applicationServerKey).
        self.vapid_public_key = _b64decode(vapid_public_key) if vapid_public_key else None
        self.url = ""
        self._origin = ""
        self._subscriptions: dict[str, _Subscription] = {}
        self._failures: dict[str, _Failure] = {}
        self._delay = 0.0
        # Authorization header -> (claims, public key) or the reason it is refused; exp is
        # checked on every use.
        self._vapid: dict[str, tuple[dict[str, Any], bytes] | _Refused] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> "FakePushService":
        app = web.Application()
        app.router.add_post("/push/{id}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = self._origin = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def subscribe(self, name: str | None = None) -> dict[str, Any]:
        """A PushSubscription as a browser's ``toJSON()`` gives it."""
        key = ec.generate_private_key(ec.SECP256R1())
        subscription = _Subscription(secrets.token_urlsafe(12), name, key, secrets.token_bytes(16))
        self._subscriptions[subscription.id] = subscription
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/{subscription.id}",
            "keys": {"p256dh": _b64encode(public), "auth": _b64encode(subscription.auth)},
        }

    def fail(
        self, subscription_endpoint_or_id: str, status: int, times: int | None = None, retry_after: int | None = None
    ) -> None:
        """Answer pushes to this subscription that would be accepted with ``status``: always, or the
        next ``times`` ones."""
        subscription = subscription_endpoint_or_id.rstrip("/").rsplit("/", 1)[-1]
        self._failures[subscription] = _Failure(status, times, retry_after)

    def delay(self, seconds: float) -> None:
        """Hold every answer back this long (0: answer at once)."""
        self._delay = seconds


    # ------------------------------------------------------------------ one push

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        record = WebPushReceived(
            subscription=request.match_info["id"],
            name=None,
            headers=headers,
            payload=None,
            urgency=headers.get("urgency", "normal"),
            ttl=None,
            topic=headers.get("topic"),
            vapid={},
            status=201,
            reason=None,
        )
        extra: dict[str, str] = {}
        try:
            self._judge(record, body)
            failure = self._failures.get(record.subscription)
            if failure is not None:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        del self._failures[record.subscription]
                if failure.retry_after is not None:
                    extra["Retry-After"] = str(failure.retry_after)
                raise _Refused(failure.status, "scripted failure")
        except _Refused as refused:
            record.status, record.reason = refused.status, refused.reason
        self.arrived(record, accepted=record.status == 201)
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        if record.status != 201:
            return web.Response(status=record.status, text=record.reason or "", headers=extra)
        message = f"{self.url}/message/{uuid.uuid4()}"
        return web.Response(status=201, headers={"Location": message, "TTL": str(record.ttl)})

    def _judge(self, record: WebPushReceived, body: bytes) -> None:
        subscription = self._subscriptions.get(record.subscription)
        if subscription is None:
            raise _Refused(404, "no such subscription")
        record.name = subscription.name
        headers = record.headers

        authorization = headers.get("authorization")
        if not authorization:
            raise _Refused(401, "VAPID authorization required")
        record.vapid = self._check_vapid(authorization)

        if body and headers.get("content-encoding", "").lower() != "aes128gcm":
            raise _Refused(415, "Content-Encoding must be aes128gcm")
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            raise _Refused(400, "TTL header must be a non-negative integer")
        record.ttl = int(ttl)
        if record.urgency not in URGENCIES:
            raise _Refused(400, f"bad Urgency {record.urgency!r}")
        if record.topic is not None and not _TOPIC.fullmatch(record.topic):
            raise _Refused(400, "Topic must be at most 32 base64url characters")
        if len(body) > MAX_BODY:
            raise _Refused(413, "payload too large")
        if body:
            try:
                plain = http_ece.decrypt(
                    body, private_key=subscription.key, auth_secret=subscription.auth, version="aes128gcm"
                )
            except Exception as exc:  # http_ece raises ECEException, cryptography InvalidTag, ValueError...
                raise _Refused(400, f"cannot decrypt: {type(exc).__name__}") from None
            try:
                record.payload = json.loads(plain)
            except ValueError:
                record.payload = plain.decode("utf-8", "replace")

    def _check_vapid(self, authorization: str) -> dict[str, Any]:
        cached = self._vapid.get(authorization)
        if cached is None:
            if len(self._vapid) > 4096:
                self._vapid.clear()
            cached = self._vapid[authorization] = self._verify_vapid(authorization)
        if isinstance(cached, _Refused):
            # A fresh one: raising a kept one again would lengthen its traceback.
            raise _Refused(cached.status, cached.reason)
        claims, key = cached
        if self.vapid_public_key is not None and key != self.vapid_public_key:
            raise _Refused(403, "VAPID key is not the subscription's application server key")
        exp, now = claims["exp"], time.time()
        if exp <= now:
            raise _Refused(403, "VAPID token expired")
        if exp > now + MAX_EXP:
            raise _Refused(403, "VAPID exp more than 24 hours ahead")
        return claims

    def _verify_vapid(self, authorization: str) -> tuple[dict[str, Any], bytes] | _Refused:
        """Everything about the token but its age."""
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "vapid":
            return _Refused(401, "Authorization scheme must be vapid")
        params = dict(part.strip().partition("=")[::2] for part in rest.split(","))
        token, k = params.get("t", ""), params.get("k", "")
        if not token or not k:
            return _Refused(401, "vapid needs t= and k=")
        try:
            key = _b64decode(k)
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                # aud and exp are checked below, exp on every use.
                options={"verify_exp": False, "verify_aud": False, "require": ["aud", "exp", "sub"]},
            )
        except (jwt.InvalidTokenError, ValueError) as exc:  # ValueError: a bad key or base64
            return _Refused(403, f"bad VAPID token: {exc}")
        if claims["aud"] != self._origin:
            return _Refused(403, f"VAPID aud {claims['aud']!r} is not {self._origin!r}")
        if not isinstance(claims["exp"], (int, float)) or isinstance(claims["exp"], bool):
            return _Refused(403, "VAPID exp must be a number")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            return _Refused(403, "VAPID sub must be a mailto: or https: URI")
        return claims, key
