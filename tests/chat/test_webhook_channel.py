"""The webhook channel against a loopback receiver: private addresses refused at connect
time (DNS rebinding), bounded DNS lookups, bounded response reads, malformed URLs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web

from channels.base import Outbound
from channels.webhook import MAX_RESPONSE_BYTES, UnsafeURL, WebhookChannel, check_url
from tests.chat.helpers import make_agent
from tests.conftest import Orgs
from tests.fakes.dns import ScriptedDNS
from tests.fakes.webhook_receiver import WebhookReceiver


def _outbound(url: str) -> Outbound:
    return Outbound(delivery_id="dlv_test", channel="webhook", event="message.created", target=url, body=b"{}", secrets=("whsec_x",))


async def test_a_name_rebound_to_loopback_after_the_check_is_refused_at_connect(receiver: WebhookReceiver) -> None:
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://rebind.example:{port}/hook"
    dns = ScriptedDNS({"rebind.example": ["93.184.216.34", "127.0.0.1"]})
    await check_url(url, allow_private=False, resolver=dns)  # first answer: a public address
    channel = WebhookChannel(allow_private=False, resolver=dns, timeout=2)
    try:
        result = await channel.deliver(_outbound(url))  # second answer: loopback
    finally:
        await channel.close()
    assert result.outcome == "failed"
    assert result.error is not None and result.error.startswith("refused:")
    assert receiver.received == []
    assert dns.lookups == ["rebind.example", "rebind.example"]

    # Allowed private addresses go through the same resolver and arrive.
    allowing = WebhookChannel(allow_private=True, resolver=ScriptedDNS({"rebind.example": ["127.0.0.1"]}), timeout=2)
    try:
        assert (await allowing.deliver(_outbound(url))).ok
    finally:
        await allowing.close()
    assert len(receiver.received) == 1


async def test_ip_literals_are_refused_without_a_lookup(receiver: WebhookReceiver) -> None:
    channel = WebhookChannel(allow_private=False, timeout=2)
    try:
        result = await channel.deliver(_outbound(receiver.url))
    finally:
        await channel.close()
    assert not result.ok and result.error is not None and result.error.startswith("refused:")
    assert receiver.received == []


async def test_dns_lookups_have_a_time_limit() -> None:
    started = time.monotonic()
    with pytest.raises(UnsafeURL, match="did not resolve"):
        await check_url("https://slow.example/hook", allow_private=False, resolver=ScriptedDNS(hang=True), timeout=0.2)
    assert time.monotonic() - started < 2


async def test_only_the_first_64_kib_of_an_answer_are_read(receiver: WebhookReceiver) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"x" * 16384
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 4):
            await response.write(chunk)
        await asyncio.sleep(5)  # and not finish before the 3 s timeout
        return response

    def respond(_: WebhookReceiver, __: Any) -> Any:
        return endless

    receiver.respond = respond
    channel = WebhookChannel(allow_private=True, timeout=3)
    try:
        started = time.monotonic()
        result = await channel.deliver(_outbound(receiver.url))
    finally:
        await channel.close()
    assert result.ok, result.error
    assert time.monotonic() - started < 2


async def test_malformed_webhook_url_is_422(client: Any, orgs: Orgs) -> None:
    for url in ("http://[::1", "http://[::1]:99999/x", "ftp://example.com/x"):
        response = await client.post(
            "/api/v1/agents", json={"name": "x", "protocol": "webhook", "webhook_url": url}, headers=orgs.a.headers
        )
        assert response.status_code == 422, (url, await response.get_data(as_text=True))
        body = await response.get_json()
        assert body["error"]["code"] == "validation_failed" and "webhook_url" in body["error"]["details"]
    agent = await make_agent(client, orgs.a.headers)
    response = await client.patch(f"/api/v1/agents/{agent['id']}", json={"test_webhook_url": "https://[zz"}, headers=orgs.a.headers)
    assert response.status_code == 422


async def test_ip_literals_in_other_digit_forms_are_refused_at_send_time(receiver: WebhookReceiver) -> None:
    """Full-width digits are an IP literal to aiohttp (which skips the resolver for it): the
    send-time check reads the host the same way."""
    port = receiver.url.split(":")[2].split("/")[0]
    channel = WebhookChannel(allow_private=False, timeout=2)
    try:
        result = await channel.deliver(_outbound(f"http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/hook"))
    finally:
        await channel.close()
    assert not result.ok and result.error is not None and result.error.startswith("refused:")
    assert receiver.received == []


@pytest.mark.parametrize(
    "address",
    ["64:ff9b:1::a9fe:a9fe", "::ffff:0:7f00:1", "::7f00:1", "fec0::1", "64:ff9b::a00:1", "::ffff:10.0.0.1"],
)
def test_translated_and_site_local_ipv6_count_as_private(address: str) -> None:
    from channels.webhook import _is_private

    assert _is_private(address)
    assert not _is_private("2606:4700:4700::1111")  # a global address stays allowed
