"""A fake Apple Push Notification service: HTTP/2 over TLS on loopback, checking what APNs checks.

Each push is judged as APNs documents it (provider token, topic, push type, priority, payload)
and answered with APNs' statuses and reasons; accepted pushes land in ``received``, refused ones
in ``rejected``. ``fail(token, 410, "Unregistered")`` scripts a device's answer and
``delay(2)`` slows every answer, for timeout tests.

ALPN: aioapns sets none on its SSL context, and need not. APNs takes HTTP/2 by prior knowledge
(aioapns and Pushy reach it so), and this fake speaks HTTP/2 whether or not "h2" was
negotiated; ``alpn`` records what each connection negotiated (None for aioapns).

Where APNs is lenient or silent the fake says so: a missing ``apns-push-type`` means "alert";
a background push is refused only for an explicit priority 10; a malformed body is answered
``PayloadEmpty``; a Live Activity payload without ``timestamp``, ``event`` or its content is
answered ``InvalidLiveActivityPayload`` (a reason of the fake's own: APNs accepts it and the
device drops it).

aioapns never acknowledges the DATA it receives, so the 65,535-byte window of a connection fills
after some two thousand error answers; later error bodies wait here, as they would at APNs,
until the client opens the window (aioapns never does: its requests then hang).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import ssl
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hpack import NeverIndexedHeaderTuple

from tests.fakes.arrivals import Arrivals
from tests.fakes.smtp import make_certificate

__all__ = ["FakeAPNs", "Received", "make_provider_key"]

PUSH_TYPES = frozenset(
    {"alert", "background", "liveactivity", "voip", "complication", "fileprovider", "mdm", "location", "pushtotalk"}
)
LIVE_ACTIVITY = ".push-type.liveactivity"
# Topics an app's bundle ID stands for, one per push type that has its own.
TOPIC_SUFFIXES = (LIVE_ACTIVITY, ".voip", ".complication", ".pushkit.fileprovider", ".location-query", ".voip-ptt")
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120
TOKEN_LIFETIME = 3600  # provider tokens older than an hour are refused
CLOCK_SKEW = 60
MAX_CONCURRENT_STREAMS = 1000  # what APNs advertises once a connection is up
CONNECTION_WINDOW = 1 << 24  # bytes of request DATA in flight on a connection

# Inbound headers are validated as h2 does for any server; the fake's own answers need not be.
_CONFIG = H2Configuration(
    client_side=False, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DEVICE_PATH = "/3/device/"


def make_provider_key() -> tuple[str, bytes]:
    """An EC P-256 key like an Apple .p8 file: (private key, PKCS8 PEM text; public key, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    status: int
    reason: str | None
    server: str  # the fake's name: "production", "sandbox", ...
    at: float = field(default_factory=time.time)  # when it arrived (wall clock, for benchmarks)

    @property
    def apns_id(self) -> str:
        return self.headers.get("apns-id", "")

    @property
    def topic(self) -> str | None:
        return self.headers.get("apns-topic")

    @property
    def push_type(self) -> str:
        return self.headers.get("apns-push-type", "alert")


@dataclass
class _Failure:
    status: int
    reason: str
    times: int | None
    retry_after: int | None


class FakeAPNs(Arrivals[Received]):
    def __init__(
        self,
        team_id: str,
        key_id: str,
        public_key_pem: bytes,
        topics: set[str] | None = None,
        name: str = "production",
    ) -> None:
        super().__init__(f"APNs {name}")
        self.team_id = team_id
        self.key_id = key_id
        self.topics = topics
        self.name = name
        self.connections = 0
        self.alpn: list[str | None] = []
        self.url = ""
        self.ca_file = Path()
        self.certificate: tuple[Path, Path] | None = None
        self.port = 0
        self._public_key = serialization.load_pem_public_key(public_key_pem)
        self._failures: dict[str, _Failure] = {}
        self._delay = 0.0
        # authorization header -> (iat, reason it is refused): clients reuse a token for up to an
        # hour, so the signature is checked once and only its age each time.
        self._provider_tokens: dict[str, tuple[int, str | None]] = {}
        self._server: asyncio.Server | None = None
        self._open: set[_Connection] = set()

    async def start(self, directory: Path, certificate: tuple[Path, Path] | None = None) -> "FakeAPNs":
        # A directory of its own: make_certificate's file names are fixed, and two fakes
        # (production and sandbox) may share the caller's directory. Two fakes a client must
        # both trust share one ``certificate`` (two self-signed ones of the same name in one
        # CA file confuse OpenSSL's lookup).
        cert, key = certificate or make_certificate(Path(tempfile.mkdtemp(prefix=f"apns-{self.name}-", dir=directory)))
        self.certificate = (cert, key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["h2"])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, ssl=context)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self.ca_file = cert
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._open):
            connection.close()
        await self._server.wait_closed()
        self._server = None

    def fail(
        self, token: str, status: int, reason: str, times: int | None = None, retry_after: int | None = None
    ) -> None:
        """Answer pushes to ``token`` that would be accepted with ``status``/``reason``: always, or
        the next ``times`` ones."""
        self._failures[token.lower()] = _Failure(status, reason, times, retry_after)

    def delay(self, seconds: float) -> None:
        """Hold every answer back this long (0: answer at once)."""
        self._delay = seconds


    # ------------------------------------------------------------------ judging a push

    def _handle(self, connection: "_Connection", stream_id: int, raw: list[tuple[str, str]], body: bytes) -> None:
        headers: dict[str, str] = {}
        duplicated = False
        for name, value in raw:
            duplicated = duplicated or name in headers
            headers[name] = value
        path = headers.get(":path", "")
        token = path[len(_DEVICE_PATH) :] if path.startswith(_DEVICE_PATH) else ""
        payload: dict[str, Any] = {}
        status, reason = self._judge(headers, duplicated, token, body, payload)
        extra: list[tuple[str, str]] = []
        if status == 200 and (failure := self._failures.get(token.lower())) is not None:
            status, reason = failure.status, failure.reason
            if failure.retry_after is not None:
                extra.append(("retry-after", str(failure.retry_after)))
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._failures[token.lower()]

        record = Received(token, headers, payload, status, reason, self.name)
        self.arrived(record, accepted=status == 200)

        # aioapns finds its request by the apns-id it sent, so it is echoed even when malformed.
        apns_id = headers.get("apns-id") or str(uuid.uuid4())
        answer: bytes | None = None
        if reason is not None:
            error: dict[str, Any] = {"reason": reason}
            if status == 410:
                error["timestamp"] = int(time.time() * 1000)
            answer = json.dumps(error).encode()
        if self._delay > 0:
            asyncio.get_running_loop().call_later(
                self._delay, connection.respond, stream_id, status, apns_id, extra, answer, True
            )
        else:
            connection.respond(stream_id, status, apns_id, extra, answer, False)

    def _judge(
        self, headers: dict[str, str], duplicated: bool, token: str, body: bytes, payload: dict[str, Any]
    ) -> tuple[int, str | None]:
        """(status, reason); fills ``payload`` once the body parses."""
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed"
        if not headers.get(":path", "").startswith(_DEVICE_PATH):
            return 404, "BadPath"
        if not token:
            return 400, "MissingDeviceToken"
        if not _HEX.fullmatch(token):
            return 400, "BadDeviceToken"
        if duplicated:
            return 400, "DuplicateHeaders"
        apns_id = headers.get("apns-id")
        if apns_id is not None and not _UUID.fullmatch(apns_id):
            return 400, "BadMessageId"

        authorization = headers.get("authorization")
        if not authorization:
            return 403, "MissingProviderToken"
        if (refused := self._check_provider_token(authorization)) is not None:
            return 403, refused

        topic = headers.get("apns-topic")
        if not topic:
            return 400, "MissingTopic"
        if self.topics is not None and not self._allowed(topic):
            return 400, "TopicDisallowed"
        push_type = headers.get("apns-push-type", "alert")
        if push_type not in PUSH_TYPES:
            return 400, "InvalidPushType"
        if (push_type == "liveactivity") != topic.endswith(LIVE_ACTIVITY):
            return 400, "InvalidPushType"
        priority = headers.get("apns-priority")
        if priority is not None and priority not in ("1", "5", "10"):
            return 400, "BadPriority"
        if push_type == "background" and priority == "10":
            return 400, "BadPriority"
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return 400, "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"

        if not body:
            return 400, "PayloadEmpty"
        if len(body) > (MAX_VOIP_PAYLOAD if push_type == "voip" else MAX_PAYLOAD):
            return 413, "PayloadTooLarge"
        try:
            parsed = json.loads(body)
        except ValueError:
            return 400, "PayloadEmpty"
        if not isinstance(parsed, dict):
            return 400, "PayloadEmpty"
        payload.update(parsed)
        aps = parsed.get("aps")
        if not isinstance(aps, dict):
            return 400, "PayloadEmpty"
        if push_type == "liveactivity" and not _live_activity_ok(aps):
            return 400, "InvalidLiveActivityPayload"
        return 200, None

    def _allowed(self, topic: str) -> bool:
        assert self.topics is not None
        if topic in self.topics:
            return True
        return any(topic.endswith(s) and topic[: -len(s)] in self.topics for s in TOPIC_SUFFIXES)

    def _check_provider_token(self, authorization: str) -> str | None:
        cached = self._provider_tokens.get(authorization)
        if cached is None:
            if len(self._provider_tokens) > 1024:
                self._provider_tokens.clear()
            cached = self._provider_tokens[authorization] = self._verify_provider_token(authorization)
        iat, refused = cached
        if refused is not None:
            return refused
        now = time.time()
        if iat < now - TOKEN_LIFETIME:
            return "ExpiredProviderToken"
        if iat > now + CLOCK_SKEW:
            return "InvalidProviderToken"
        return None

    def _verify_provider_token(self, authorization: str) -> tuple[int, str | None]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 0, "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token.strip())
            claims = jwt.decode(
                token.strip(),
                self._public_key,  # type: ignore[arg-type]
                algorithms=["ES256"],
                options={"verify_iat": False, "verify_exp": False, "require": ["iss", "iat"]},
            )
        except jwt.InvalidTokenError:
            return 0, "InvalidProviderToken"
        iat = claims["iat"]
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return 0, "InvalidProviderToken"
        if isinstance(iat, bool) or not isinstance(iat, (int, float)):
            return 0, "InvalidProviderToken"
        return int(iat), None


def _live_activity_ok(aps: dict[str, Any]) -> bool:
    timestamp, event = aps.get("timestamp"), aps.get("event")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or event not in ("start", "update", "end"):
        return False
    if event in ("start", "update") and not isinstance(aps.get("content-state"), dict):
        return False
    if event == "start":
        return isinstance(aps.get("attributes-type"), str) and isinstance(aps.get("attributes"), dict)
    return True


class _Connection(asyncio.Protocol):
    """One client connection: h2 framing, with the judging left to the FakeAPNs."""

    def __init__(self, fake: FakeAPNs) -> None:
        self.fake = fake
        self.h2 = H2Connection(config=_CONFIG)
        self.h2.local_settings = Settings(
            client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS}
        )
        # Answers go out without Huffman coding (optional in HPACK, and pure Python here: the
        # costliest step of a push), and each unique apns-id stays out of the header table.
        self.h2.encoder.encode = functools.partial(self.h2.encoder.encode, huffman=False)  # type: ignore[method-assign]
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self.held: dict[int, bytes] = {}  # error bodies waiting for the client's flow-control window

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fake.connections += 1
        self.fake._open.add(self)
        tls = transport.get_extra_info("ssl_object")
        self.fake.alpn.append(tls.selected_alpn_protocol() if tls is not None else None)
        self.h2.initiate_connection()
        # aioapns writes every queued request in one go, so a burst outruns the default
        # 65,535-byte window (it then sleeps a second and retries): open it wide at once.
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fake._open.discard(self)
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except ProtocolError:
            self.flush()  # h2 has queued the GOAWAY
            self.close()
            return
        for event in events:
            if isinstance(event, RequestReceived):
                # str pairs, given header_encoding
                self.requests[event.stream_id] = (event.headers, bytearray())  # type: ignore[assignment]
            elif isinstance(event, DataReceived):
                request = self.requests.get(event.stream_id)
                if request is not None:
                    request[1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                request = self.requests.pop(event.stream_id, None)
                if request is not None:
                    self.fake._handle(self, event.stream_id, request[0], bytes(request[1]))
            elif isinstance(event, StreamReset):
                self.requests.pop(event.stream_id, None)
                self.held.pop(event.stream_id, None)
            elif isinstance(event, WindowUpdated):
                self._send_held()
            elif isinstance(event, ConnectionTerminated):
                self.flush()
                self.close()
                return
        self.flush()

    def respond(
        self, stream_id: int, status: int, apns_id: str, extra: list[tuple[str, str]], body: bytes | None, flush: bool
    ) -> None:
        if self.transport is None:
            return
        apns_header = NeverIndexedHeaderTuple("apns-id", apns_id)
        headers: list[tuple[str, str] | NeverIndexedHeaderTuple] = [(":status", str(status)), apns_header, *extra]
        try:
            if body is None:
                self.h2.send_headers(stream_id, headers, end_stream=True)
            else:
                headers.append(("content-type", "application/json"))
                headers.append(("content-length", str(len(body))))
                self.h2.send_headers(stream_id, headers)
                # One DATA frame: aioapns parses each frame as a whole JSON document.
                if self.h2.local_flow_control_window(stream_id) >= len(body):
                    self.h2.send_data(stream_id, body, end_stream=True)
                else:
                    self.held[stream_id] = body
        except ProtocolError:
            return  # the client reset the stream while the answer was delayed
        if flush:
            self.flush()

    def _send_held(self) -> None:
        for stream_id, body in list(self.held.items()):
            try:
                if self.h2.local_flow_control_window(stream_id) < len(body):
                    continue
                self.h2.send_data(stream_id, body, end_stream=True)
            except ProtocolError:
                pass
            del self.held[stream_id]

    def flush(self) -> None:
        if self.transport is not None and (data := self.h2.data_to_send()):
            self.transport.write(data)
