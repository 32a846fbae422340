"""The APNs and Web Push fakes speak the real protocols: driven here by the official clients
(aioapns, pywebpush), never by Switchboard's own code."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator

import aioapns.connection
import aiohttp
import pytest
from aioapns import APNs, NotificationRequest, PushType
from aioapns.connection import APNsProductionClientProtocol
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, WebPusher, webpush_async

from tests.fakes.apns import FakeAPNs, make_provider_key
from tests.fakes.webpush import FakePushService

TEAM, KEY_ID, TOPIC = "TEAM123456", "KEY1234567", "com.example.switchboard"
TOKEN = "a1" * 32
ALERT = {"aps": {"alert": {"title": "Deploy", "body": "v2 is live"}, "sound": "default"}, "room": "ops"}


# ------------------------------------------------------------------------ APNs


@pytest.fixture(scope="module")
def provider_key() -> tuple[str, bytes]:
    return make_provider_key()


@pytest.fixture
async def apns(tmp_path: Path, provider_key: tuple[str, bytes]) -> AsyncIterator[FakeAPNs]:
    fake = await FakeAPNs(TEAM, KEY_ID, provider_key[1], topics={TOPIC}).start(tmp_path)
    yield fake
    await fake.stop()


@pytest.fixture
async def client(apns: FakeAPNs, provider_key: tuple[str, bytes]) -> AsyncIterator[APNs]:
    client = aioapns_client(apns, provider_key[0])
    yield client
    await close(client)


def aioapns_client(fake: FakeAPNs, key: str, key_id: str = KEY_ID, alpn: bool = False) -> APNs:
    context = ssl.create_default_context(cafile=str(fake.ca_file))
    if alpn:
        context.set_alpn_protocols(["h2"])
    client = APNs(
        key=key,
        key_id=key_id,
        team_id=TEAM,
        topic=TOPIC,
        use_sandbox=False,
        ssl_context=context,
        max_connection_attempts=1,
    )

    class Protocol(APNsProductionClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = fake.port

    client.pool.protocol_class = Protocol
    return client


async def close(client: APNs) -> None:
    client.pool.close()
    await asyncio.sleep(0)  # let the TLS transports shut down


@pytest.mark.parametrize("alpn", [False, True])
async def test_alert_push_is_received(apns: FakeAPNs, provider_key: tuple[str, bytes], alpn: bool) -> None:
    client = aioapns_client(apns, provider_key[0], alpn=alpn)
    try:
        request = NotificationRequest(TOKEN, ALERT, push_type=PushType.ALERT, priority=10, collapse_key="deploys")
        result = await client.send_notification(request)
    finally:
        await close(client)
    assert result.is_successful and result.notification_id == request.notification_id
    [push] = await apns.wait_for(1)
    assert push.token == TOKEN and push.payload == ALERT and push.server == "production"
    assert push.apns_id == request.notification_id and push.topic == TOPIC and push.push_type == "alert"
    assert push.headers["apns-priority"] == "10" and push.headers["apns-collapse-id"] == "deploys"
    assert push.headers["authorization"].startswith("bearer ")
    # aioapns offers no ALPN; the fake, like APNs, speaks HTTP/2 to it all the same.
    assert apns.alpn == ["h2" if alpn else None]


async def test_a_token_signed_with_another_key_is_refused(apns: FakeAPNs) -> None:
    client = aioapns_client(apns, make_provider_key()[0])
    try:
        result = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    finally:
        await close(client)
    assert (result.status, result.description) == ("403", "InvalidProviderToken")
    assert apns.received == [] and apns.rejected[0].reason == "InvalidProviderToken"


async def test_a_token_with_another_key_id_is_refused(apns: FakeAPNs, provider_key: tuple[str, bytes]) -> None:
    client = aioapns_client(apns, provider_key[0], key_id="OTHERKEYID")
    try:
        result = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    finally:
        await close(client)
    assert (result.status, result.description) == ("403", "InvalidProviderToken")


@pytest.mark.parametrize(("skew", "reason"), [(-3700, "ExpiredProviderToken"), (120, "InvalidProviderToken")])
async def test_a_provider_token_out_of_its_hour_is_refused(
    apns: FakeAPNs, client: APNs, monkeypatch: pytest.MonkeyPatch, skew: int, reason: str
) -> None:
    # aioapns stamps iat from its own clock: shift that clock only.
    monkeypatch.setattr(aioapns.connection, "time", SimpleNamespace(time=lambda: time.time() + skew))
    result = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    assert (result.status, result.description) == ("403", reason)


async def test_scripted_unregistered(apns: FakeAPNs, client: APNs) -> None:
    apns.fail(TOKEN, 410, "Unregistered")
    for _ in range(2):
        result = await client.send_notification(NotificationRequest(TOKEN, ALERT))
        assert (result.status, result.description) == ("410", "Unregistered")
        assert isinstance(result.timestamp, int) and abs(result.timestamp / 1000 - time.time()) < 60
    assert [r.status for r in apns.rejected] == [410, 410]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "BadDeviceToken"),
        (400, "DeviceTokenNotForTopic"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ],
)
async def test_scripted_failures(apns: FakeAPNs, client: APNs, status: int, reason: str) -> None:
    apns.fail(TOKEN, status, reason)
    result = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    assert (result.status, result.description) == (str(status), reason)


async def test_too_many_requests_once_then_delivered(apns: FakeAPNs, client: APNs) -> None:
    apns.fail(TOKEN, 429, "TooManyRequests", times=1, retry_after=2)
    first = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    second = await client.send_notification(NotificationRequest(TOKEN, ALERT))
    assert (first.status, first.description) == ("429", "TooManyRequests")
    assert second.is_successful and len(apns.received) == 1


async def test_live_activity_needs_its_topic(apns: FakeAPNs, client: APNs) -> None:
    topic = f"{TOPIC}.push-type.liveactivity"
    update = {"aps": {"timestamp": int(time.time()), "event": "update", "content-state": {"stage": "deploying"}}}
    good = NotificationRequest(TOKEN, update, push_type=PushType.LIVEACTIVITY, priority=10, apns_topic=topic)
    wrong_topic = NotificationRequest(TOKEN, update, push_type=PushType.LIVEACTIVITY)
    no_event = NotificationRequest(TOKEN, {"aps": {"timestamp": 1}}, push_type=PushType.LIVEACTIVITY, apns_topic=topic)
    assert (await client.send_notification(good)).is_successful
    result = await client.send_notification(wrong_topic)
    assert (result.status, result.description) == ("400", "InvalidPushType")
    result = await client.send_notification(no_event)
    assert (result.status, result.description) == ("400", "InvalidLiveActivityPayload")
    assert apns.received[0].push_type == "liveactivity"


async def test_header_checks(apns: FakeAPNs, client: APNs) -> None:
    quiet = {"aps": {"content-available": 1}}
    cases = [
        (NotificationRequest(TOKEN, ALERT, apns_topic="com.example.other"), "TopicDisallowed"),
        (NotificationRequest(TOKEN, quiet, push_type=PushType.BACKGROUND, priority=10), "BadPriority"),
        (NotificationRequest(TOKEN, ALERT, priority=7), "BadPriority"),
        (NotificationRequest("not-hex", ALERT), "BadDeviceToken"),
        (NotificationRequest(TOKEN, {"room": "ops"}), "PayloadEmpty"),
    ]
    for request, reason in cases:
        result = await client.send_notification(request)
        assert (result.status, result.description) == ("400", reason)
    background = NotificationRequest(TOKEN, quiet, push_type=PushType.BACKGROUND, priority=5)
    assert (await client.send_notification(background)).is_successful


async def test_payload_over_4096_bytes_is_too_large(apns: FakeAPNs, client: APNs) -> None:
    big = {"aps": {"alert": "x" * 4100}}
    result = await client.send_notification(NotificationRequest(TOKEN, big))
    assert (result.status, result.description) == ("413", "PayloadTooLarge")


async def test_many_concurrent_pushes_share_one_connection(apns: FakeAPNs, client: APNs) -> None:
    requests = [NotificationRequest(f"{i:064x}", {"aps": {"alert": f"n{i}"}}) for i in range(500)]
    results = await asyncio.gather(*(client.send_notification(r) for r in requests))
    assert all(r.is_successful for r in results)
    received = await apns.wait_for(500)
    assert {r.apns_id for r in received} == {r.notification_id for r in requests}
    assert apns.connections == 1


async def test_a_slow_answer_meets_the_callers_timeout(apns: FakeAPNs, client: APNs) -> None:
    # aioapns has no timeout of its own: the caller must bound each send. When the answer then
    # lands, aioapns sets a result on the cancelled future, which raises inside its
    # data_received and loses the whole connection (and any other push in flight on it).
    apns.delay(0.3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.send_notification(NotificationRequest(TOKEN, ALERT)), 0.05)
    await apns.wait_for(1)  # it arrived all the same
    apns.delay(0)
    async with asyncio.timeout(5):  # until the late answer has cost aioapns its connection
        while client.pool.connections:
            await asyncio.sleep(0.01)
    assert (await client.send_notification(NotificationRequest(TOKEN, ALERT))).is_successful
    assert apns.connections == 2


async def test_waiting_in_vain_says_what_arrived(apns: FakeAPNs, client: APNs) -> None:
    await client.send_notification(NotificationRequest("ff" * 32, {"room": "ops"}))
    with pytest.raises(AssertionError, match=r"0 accepted pushes, waited for 1; rejected reasons: \['PayloadEmpty'\]"):
        await apns.wait_for(1, timeout=0.05)


async def test_two_fakes_can_share_a_directory(tmp_path: Path, provider_key: tuple[str, bytes]) -> None:
    production = await FakeAPNs(TEAM, KEY_ID, provider_key[1], name="production").start(tmp_path)
    sandbox = await FakeAPNs(TEAM, KEY_ID, provider_key[1], name="sandbox").start(tmp_path)
    try:
        assert production.ca_file != sandbox.ca_file and production.port != sandbox.port
        client = aioapns_client(sandbox, provider_key[0])
        try:
            assert (await client.send_notification(NotificationRequest(TOKEN, ALERT))).is_successful
        finally:
            await close(client)
        assert [r.server for r in await sandbox.wait_for(1)] == ["sandbox"] and production.received == []
    finally:
        await production.stop()
        await sandbox.stop()


# ------------------------------------------------------------------------ Web Push


@pytest.fixture
async def push_service() -> AsyncIterator[FakePushService]:
    fake = await FakePushService().start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="module")
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


CLAIMS = {"sub": "mailto:ops@example.com"}


async def send(
    session: aiohttp.ClientSession,
    subscription: dict[str, Any],
    vapid: Vapid,
    data: Any,
    claims: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    kwargs.setdefault("timeout", 5)  # seconds, as aiohttp's total; None would mean no timeout at all
    # webpush_async fills in aud and exp on the claims it is given: a copy each time.
    claims = dict(claims or CLAIMS)
    return await webpush_async(
        subscription, json.dumps(data), vapid_private_key=vapid, vapid_claims=claims, aiohttp_session=session, **kwargs
    )


async def test_web_push_is_decrypted_to_what_was_sent(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    subscription = push_service.subscribe("laptop")
    message = {"title": "Deploy", "body": "v2 is live ✓", "data": {"room": "ops", "n": 3}}
    headers = {"Urgency": "high", "Topic": "deploys"}
    response = await send(session, subscription, vapid, message, ttl=60, headers=headers)
    assert response.status == 201 and response.headers["Location"].startswith(f"{push_service.url}/message/")
    [push] = await push_service.wait_for(1)
    assert push.payload == message and push.name == "laptop"
    assert (push.ttl, push.urgency, push.topic) == (60, "high", "deploys")
    assert push.vapid["aud"] == push_service.url and push.vapid["sub"] == CLAIMS["sub"]
    assert push.headers["content-encoding"] == "aes128gcm"


async def test_web_push_vapid_is_checked(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    subscription = push_service.subscribe()
    with pytest.raises(WebPushException) as wrong_aud:
        await send(session, subscription, vapid, {"n": 1}, claims={**CLAIMS, "aud": "https://push.example.com"})
    assert wrong_aud.value.status_code == 403

    # webpush_async replaces a past exp, so an expired token is sent with WebPusher directly.
    for exp in (int(time.time()) - 10, int(time.time()) + 25 * 3600):
        headers = vapid.sign({**CLAIMS, "aud": push_service.url, "exp": exp})
        response = await WebPusher(subscription, aiohttp_session=session).send_async(
            json.dumps({"n": 2}), headers, ttl=30, timeout=5
        )
        assert response.status == 403

    pusher = WebPusher(subscription, aiohttp_session=session)
    response = await pusher.send_async(json.dumps({"n": 3}), {}, ttl=30, timeout=5)
    assert response.status == 401
    reasons = [r.reason or "" for r in await push_service.wait_for_rejected(4)]
    assert "aud" in reasons[0] and "expired" in reasons[1] and "24 hours" in reasons[2] and "required" in reasons[3]
    assert push_service.received == []


async def test_web_push_restricted_to_an_application_server_key(vapid: Vapid, session: aiohttp.ClientSession) -> None:
    public = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    other = Vapid()
    other.generate_keys()
    fake = await FakePushService(vapid_public_key=b64urlencode(public)).start()
    try:
        subscription = fake.subscribe()
        assert (await send(session, subscription, vapid, {"n": 1})).status == 201
        with pytest.raises(WebPushException) as refused:
            await send(session, subscription, other, {"n": 2})
        assert refused.value.status_code == 403
    finally:
        await fake.stop()


async def test_web_push_scripted_failures(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    gone, busy = push_service.subscribe(), push_service.subscribe()
    push_service.fail(gone["endpoint"], 410)
    push_service.fail(busy["endpoint"], 429, times=1, retry_after=3)
    with pytest.raises(WebPushException) as refused:
        await send(session, gone, vapid, {"n": 1})
    assert refused.value.status_code == 410
    with pytest.raises(WebPushException) as limited:
        await send(session, busy, vapid, {"n": 2})
    assert (limited.value.status_code, limited.value.retry_after) == (429, "3")
    assert (await send(session, busy, vapid, {"n": 3})).status == 201


async def test_web_push_unknown_subscription_is_404(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    subscription = push_service.subscribe()
    unknown = {**subscription, "endpoint": f"{push_service.url}/push/nobody"}
    with pytest.raises(WebPushException) as refused:
        await send(session, unknown, vapid, {"n": 1})
    assert refused.value.status_code == 404
    assert push_service.rejected[0].subscription == "nobody"


async def test_web_push_headers_are_checked(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    subscription = push_service.subscribe()
    with pytest.raises(WebPushException) as bad_urgency:
        await send(session, subscription, vapid, {"n": 1}, headers={"Urgency": "urgent"})
    assert bad_urgency.value.status_code == 400
    with pytest.raises(WebPushException) as old_encoding:
        await send(session, subscription, vapid, {"n": 2}, content_encoding="aesgcm")
    assert old_encoding.value.status_code == 415
    with pytest.raises(WebPushException) as too_large:
        await send(session, subscription, vapid, {"n": "x" * 4096})
    assert too_large.value.status_code == 413


async def test_web_push_timeout_is_the_callers(
    push_service: FakePushService, vapid: Vapid, session: aiohttp.ClientSession
) -> None:
    # pywebpush hands timeout to aiohttp as ClientTimeout(total=...): a slow service raises the
    # builtin TimeoutError, not WebPushException.
    push_service.delay(0.3)
    with pytest.raises(TimeoutError):
        await send(session, push_service.subscribe(), vapid, {"n": 1}, timeout=0.05)
    assert len(await push_service.wait_for(1)) == 1
