"""A webhook receiver on loopback that checks what Switchboard sends.

It verifies the ``X-Switchboard-Signature`` of every request against the secrets it is given
(any ``v1=`` may match, as after a rotation), records each request, and answers with whatever
``respond(request)`` returns, so tests can script failures: ``fail_times(2, 503)``. A
responder may also return ``async fn(request) -> StreamResponse`` to write its own answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

__all__ = ["Received", "WebhookReceiver", "verify_signature"]


def verify_signature(secrets: list[str], header: str, timestamp: str, body: bytes) -> list[str]:
    """The secrets whose HMAC appears in the header (empty: the signature is not valid)."""
    given = [part.strip()[3:] for part in header.split(",") if part.strip().startswith("v1=")]
    signed = timestamp.encode() + b"." + body
    matched = []
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(expected, g) for g in given):
            matched.append(secret)
    return matched


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signed_with: list[str]
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-Switchboard-Delivery", "")


Responder = Callable[["WebhookReceiver", Received], Any]


@dataclass
class WebhookReceiver:
    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    respond: Responder | None = None
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def acknowledged(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    @property
    def invalid(self) -> list[Received]:
        return [r for r in self.received if not r.signed_with]

    def fail_times(self, n: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` to the first ``n`` attempts of each delivery, then 200."""
        counts: dict[str, int] = {}

        def respond(_: WebhookReceiver, r: Received) -> Any:
            counts[r.delivery_id] = counts.get(r.delivery_id, 0) + 1
            if counts[r.delivery_id] <= n:
                return web.Response(status=status, headers=headers or {})
            return web.json_response({"ok": True})

        self.respond = respond

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        signed_with = verify_signature(
            self.secrets,
            headers.get("X-Switchboard-Signature", ""),
            headers.get("X-Switchboard-Timestamp", ""),
            body,
        )
        record = Received(request.path, headers, body, signed_with, 200)
        response: Any = None
        if self.respond is not None:
            response = self.respond(self, record)
            if asyncio.iscoroutine(response):
                response = await response
        if response is None:
            response = web.json_response({"ok": True})
        elif callable(response):  # a handler that writes its own (e.g. streamed) answer
            self.received.append(record)
            self._arrived.set()
            return await response(request)  # type: ignore[no-any-return]
        record.status = response.status
        self.received.append(record)
        self._arrived.set()
        return response  # type: ignore[no-any-return]

    async def start(self) -> "WebhookReceiver":
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, predicate: Callable[["WebhookReceiver"], bool], timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"receiver: condition not met; got {len(self.received)} requests")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))
            except asyncio.TimeoutError:
                pass
