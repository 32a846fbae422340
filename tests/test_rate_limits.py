"""Request rate limits: per API key and per person, by plan; per client address without a
principal; X-RateLimit-* headers on every answer; 429 with Retry-After; one limiter in memory or
shared through Redis; X-Forwarded-For believed only from listed proxies; IPv6 counted by /64."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from app.kernel.client_address import ClientAddresses
from app.kernel.config import Settings, load_settings
from app.kernel.ratelimit import MemoryCounter
from app.serving.app import create_app
from app.serving.asgi import build
from app.services import accounts
from tests.chat.conftest import running_server
from tests.conftest import TEST_REDIS_URL, free_socket, login, make_org
from tests.test_errors import assert_envelope

HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@asynccontextmanager
async def serving(settings: Settings, **overrides: Any) -> AsyncIterator[Any]:
    app = build(settings.with_overrides(**overrides), auto_migrate=False)[1]
    async with app.test_app():
        yield app


def figures(response: Any) -> tuple[int, int, int]:
    limit, remaining, reset = (int(response.headers[name]) for name in HEADERS)
    return limit, remaining, reset


def assert_refused(response: Any, body: dict[str, Any], limit: int) -> None:
    assert response.status_code == 429
    assert_envelope(body, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["error"]["details"] == {"limit": limit, "retry_after": retry_after}
    assert figures(response) == (limit, 0, retry_after)


async def test_api_key_requests_count_down_then_429(settings: Settings) -> None:
    async with serving(settings, rate_limit_per_minute=3) as app:
        client = app.test_client()
        org = await make_org("Acme")
        seen = []
        for _ in range(3):
            response = await client.get("/api/v1/organization", headers=org.headers)
            assert response.status_code == 200
            limit, remaining, reset = figures(response)
            assert limit == 3 and 1 <= reset <= 60
            seen.append(remaining)
        assert seen == [2, 1, 0]
        refused = await client.get("/api/v1/organization", headers=org.headers)
        assert_refused(refused, await refused.get_json(), 3)
        # Errors carry the headers too: a 404 is counted and refused like any request.
        assert (await client.get("/api/v1/agents/agt_nope", headers=org.headers)).status_code == 429


async def test_separate_keys_have_separate_budgets(settings: Settings) -> None:
    async with serving(settings, rate_limit_per_minute=3) as app:
        client = app.test_client()
        a, b = await make_org("Acme"), await make_org("Globex")
        made = await client.post("/api/v1/api-keys", json={"name": "second", "scopes": ["organizations:read"]}, headers=a.headers)
        assert made.status_code == 201 and figures(made)[:2] == (3, 2)
        second = {"Authorization": f"Bearer {(await made.get_json())['api_key']['key']}"}
        for _ in range(2):
            assert (await client.get("/api/v1/organization", headers=a.headers)).status_code == 200
        assert (await client.get("/api/v1/organization", headers=a.headers)).status_code == 429
        # Another key of the same organization, and another organization's key, start afresh.
        for headers in (second, b.headers):
            fresh = await client.get("/api/v1/organization", headers=headers)
            assert fresh.status_code == 200 and figures(fresh)[:2] == (3, 2)


async def test_a_persons_sessions_share_one_budget(settings: Settings) -> None:
    async with serving(settings, rate_limit_per_minute=4) as app:
        client = app.test_client()
        org = await make_org("Acme")
        first = {"Authorization": f"Bearer {await login(client, org.owner_email, org.owner_password)}"}
        response = await client.get("/api/v1/me", headers=first)
        assert response.status_code == 200 and figures(response)[:2] == (4, 3)
        second = {"Authorization": f"Bearer {await login(client, org.owner_email, org.owner_password)}"}
        assert figures(await client.get("/api/v1/me", headers=second))[:2] == (4, 2)
        assert figures(await client.get("/api/v1/me", headers=first))[:2] == (4, 1)
        assert figures(await client.get("/api/v1/me", headers=second))[:2] == (4, 0)
        refused = await client.get("/api/v1/me", headers=first)
        assert_refused(refused, await refused.get_json(), 4)
        # The organization's API key is not the person: its budget is untouched.
        assert figures(await client.get("/api/v1/organization", headers=org.headers))[:2] == (4, 3)


async def test_the_window_starts_again(settings: Settings) -> None:
    now = [1000.0]
    async with serving(settings, rate_limit_per_minute=2) as app:
        app.extensions["rate_limits"].counter = MemoryCounter(clock=lambda: now[0])
        client = app.test_client()
        org = await make_org("Acme")
        for _ in range(2):
            assert (await client.get("/api/v1/organization", headers=org.headers)).status_code == 200
        now[0] += 45
        refused = await client.get("/api/v1/organization", headers=org.headers)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "15"
        now[0] += 15
        again = await client.get("/api/v1/organization", headers=org.headers)
        assert again.status_code == 200 and figures(again) == (2, 1, 60)


async def test_the_limit_is_the_plans(settings: Settings, tmp_path: Path) -> None:
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({
        "self-hosted": {"name": "Self-hosted", "limits": {}},  # no figure: the default 6,000
        "tiny": {"name": "Tiny", "requests_per_minute": 2, "limits": {}},
        "open": {"name": "Open", "requests_per_minute": 0, "limits": {}},  # 0: not limited
    }))
    async with serving(settings, plans_file=str(plans)) as app:
        client = app.test_client()
        roomy, tiny, open_ = await make_org("Roomy"), await make_org("Tiny"), await make_org("Open")
        await accounts.set_plan(tiny.id, "tiny")
        await accounts.set_plan(open_.id, "open")
        assert figures(await client.get("/api/v1/organization", headers=roomy.headers))[:2] == (6000, 5999)
        for _ in range(2):
            assert (await client.get("/api/v1/organization", headers=tiny.headers)).status_code == 200
        refused = await client.get("/api/v1/organization", headers=tiny.headers)
        assert_refused(refused, await refused.get_json(), 2)
        unlimited = await client.get("/api/v1/organization", headers=open_.headers)
        assert unlimited.status_code == 200 and "X-RateLimit-Limit" not in unlimited.headers


async def test_bundled_plans_and_the_setting(settings: Settings) -> None:
    async with serving(settings) as app:
        client = app.test_client()
        org = await make_org("Acme")
        assert figures(await client.get("/api/v1/organization", headers=org.headers))[0] == 6000
        await accounts.set_plan(org.id, "free")
        assert figures(await client.get("/api/v1/organization", headers=org.headers))[0] == 120
    # The setting overrides every plan; 0 turns the per-caller limit off (login guards stay).
    assert load_settings({"SWITCHBOARD_RATE_LIMIT_PER_MINUTE": "50"}).rate_limit_per_minute == 50
    assert load_settings({}).rate_limit_per_minute is None
    async with serving(settings, rate_limit_per_minute=0, login_attempts_per_minute=1) as app:
        client = app.test_client()
        org = await make_org("Off")
        response = await client.get("/api/v1/organization", headers=org.headers)
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response.headers
        wrong = {"email": org.owner_email, "password": "not it"}
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 429


async def test_callers_without_a_key_are_counted_by_address(settings: Settings) -> None:
    async with serving(settings, rate_limit_per_minute=2) as app:
        client = app.test_client()
        here = {"client": ("192.0.2.10", 5000)}
        for expected in (1, 0):
            response = await client.get("/api/v1/organization", scope_base=here)  # no key: 401
            assert response.status_code == 401 and figures(response)[:2] == (2, expected)
        refused = await client.get("/api/v1/organization", headers={"Authorization": "Bearer ak_guess"}, scope_base=here)
        assert_refused(refused, await refused.get_json(), 2)
        elsewhere = await client.get("/api/v1/organization", scope_base={"client": ("192.0.2.11", 5000)})
        assert elsewhere.status_code == 401 and figures(elsewhere)[:2] == (2, 1)
        # Health probes are never counted or refused.
        health = await client.get("/healthz", scope_base=here)
        assert health.status_code == 200 and "X-RateLimit-Limit" not in health.headers


async def test_forwarded_for_is_believed_only_from_a_listed_proxy(settings: Settings) -> None:
    async with serving(settings, rate_limit_per_minute=1, trusted_proxies=("10.0.0.0/8", "2001:db8:ffff::1")) as app:
        client = app.test_client()

        async def status(peer: str, forwarded: str) -> int:
            response = await client.get(
                "/api/v1/organization", headers={"X-Forwarded-For": forwarded}, scope_base={"client": (peer, 4000)}
            )
            return int(response.status_code)

        # Through the proxy: each client named has its own budget ...
        assert await status("10.1.2.3", "203.0.113.7") == 401
        assert await status("10.9.9.9", "203.0.113.8") == 401
        assert await status("10.1.2.3", "203.0.113.7") == 429
        # ... and what the client wrote left of the proxy's entry changes nothing.
        assert await status("10.1.2.3", "198.18.0.1, 203.0.113.7") == 429
        # Proxies in a chain are skipped: the right-most untrusted address is the client.
        assert await status("2001:db8:ffff::1", "203.0.113.7, 10.0.0.5") == 429
        assert await status("10.1.2.3", "203.0.113.9, 10.0.0.5, 10.0.0.6") == 401
        # A peer that is not listed is the client, whatever its header says.
        assert await status("198.51.100.9", "203.0.113.50") == 401
        assert await status("198.51.100.9", "203.0.113.51") == 429


async def test_ipv6_login_guesses_count_per_64(settings: Settings) -> None:
    async with serving(settings, login_attempts_per_minute=2) as app:
        client = app.test_client()
        org = await make_org("Acme")
        wrong = {"email": org.owner_email, "password": "not it"}

        async def attempt(address: str) -> int:
            response = await client.post("/api/v1/auth/login", json=wrong, scope_base={"client": (address, 4000)})
            return int(response.status_code)

        assert await attempt("2001:db8:1:2::1") == 401
        assert await attempt("2001:db8:1:2:ffff:ffff:ffff:fffe") == 401
        assert await attempt("2001:db8:1:2::abcd") == 429  # same /64: same allowance
        assert await attempt("2001:db8:1:3::1") == 401  # the next /64 is someone else


def test_client_addresses() -> None:
    plain = ClientAddresses()
    assert plain.of("192.0.2.1", ["203.0.113.1"]) == "192.0.2.1"
    assert plain.of("2001:db8::1") == "2001:db8::/64"
    assert plain.of("::ffff:192.0.2.1") == "192.0.2.1"
    assert plain.of("<local>") == "<local>" and plain.of(None) == "unknown"
    proxied = ClientAddresses(["127.0.0.1", "fd00::/8"])
    assert proxied.of("127.0.0.1", ["203.0.113.1:5555"]) == "203.0.113.1"
    assert proxied.of("127.0.0.1", ["[2001:db8:a:b:c::1]:443"]) == "2001:db8:a:b::/64"
    assert proxied.of("fd00::2", ["198.51.100.1", "fd00::3"]) == "198.51.100.1"  # two headers, in order
    assert proxied.of("127.0.0.1", ["not-an-address"]) == "127.0.0.1"  # the proxy's own word is kept
    assert proxied.of("127.0.0.1", ["127.0.0.1"]) == "127.0.0.1"  # all proxies: the left-most
    with pytest.raises(ValueError, match="SWITCHBOARD_TRUSTED_PROXIES"):
        ClientAddresses(["10.0.0.0/8", "proxy.internal"])


async def test_mcp_shares_the_keys_budget(settings: Settings) -> None:
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    async with running_server(settings.with_overrides(rate_limit_per_minute=3)) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/api/v1/organization", headers=org.headers)).status_code == 200
            listed = await http.post("/mcp/v1", json=rpc, headers=accept | org.headers)
            assert listed.status_code == 200 and "tools" in listed.json()["result"]
            assert figures(listed)[:2] == (3, 1)
            assert figures(await http.get("/api/v1/organization", headers=org.headers))[:2] == (3, 0)
            refused = await http.post("/mcp/v1", json=rpc, headers=accept | org.headers)
            assert_refused(refused, refused.json(), 3)
            # Without a key MCP counts by address as REST does, and says so on its 401.
            anonymous = await http.post("/mcp/v1", json=rpc, headers=accept)
            assert anonymous.status_code == 401 and figures(anonymous)[:2] == (3, 2)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
async def test_two_instances_share_counters_through_redis(settings: Settings) -> None:
    shared = settings.with_overrides(redis_url=TEST_REDIS_URL, rate_limit_per_minute=4, login_attempts_per_minute=2)
    async with serving(shared) as first:
        second = create_app(shared, auto_migrate=False)  # another instance on the same database and Redis
        try:
            one, two = first.test_client(), second.test_client()
            org = await make_org("Acme")
            seen = []
            for client in (one, two, one, two):
                response = await client.get("/api/v1/organization", headers=org.headers)
                assert response.status_code == 200
                seen.append(figures(response)[1])
            assert seen == [3, 2, 1, 0]
            refused = await one.get("/api/v1/organization", headers=org.headers)
            assert_refused(refused, await refused.get_json(), 4)
            # Counts made at once (sent to Redis together) are each counted once.
            other = await make_org("Globex")
            answers = await asyncio.gather(
                *(c.get("/api/v1/organization", headers=other.headers) for c in (one, two) * 3)
            )
            assert sorted(r.status_code for r in answers) == [200] * 4 + [429] * 2
            assert sorted(figures(r)[1] for r in answers if r.status_code == 200) == [0, 1, 2, 3]
            # The login guards are shared too (an address no other test uses).
            here = {"client": (f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}::1", 4000)}
            wrong = {"email": org.owner_email, "password": "not it"}
            codes = [(await c.post("/api/v1/auth/login", json=wrong, scope_base=here)).status_code for c in (one, two, one)]
            assert codes == [401, 401, 429]
        finally:
            await second.extensions["rate_limits"].close()


async def test_unreachable_redis_counts_in_process(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    sock = free_socket()  # a port nobody listens on once closed: every connection is refused
    url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    sock.close()
    with caplog.at_level(logging.WARNING, logger="switchboard.ratelimit"):
        async with serving(settings, redis_url=url, rate_limit_per_minute=2) as app:
            client = app.test_client()
            org = await make_org("Acme")
            for expected in (1, 0):
                response = await client.get("/api/v1/organization", headers=org.headers)
                assert response.status_code == 200 and figures(response)[:2] == (2, expected)
            assert (await client.get("/api/v1/organization", headers=org.headers)).status_code == 429
    warnings = [r.getMessage() for r in caplog.records if r.name == "switchboard.ratelimit"]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0]


async def test_socket_events_share_the_keys_budget(settings: Settings) -> None:
    """socket.io is how people send messages: its events count like requests."""
    import socketio

    async with running_server(settings.with_overrides(rate_limit_per_minute=3)) as server:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert figures(await http.get("/api/v1/organization", headers=org.headers))[:2] == (3, 2)
            sio = socketio.AsyncClient(reconnection=False)
            await sio.connect(server.url, auth={"token": org.api_key}, transports=["websocket"], wait_timeout=5)
            try:
                acks = [await sio.call("sync", {"conversation_id": "conv_none", "after_seq": 0}, timeout=5) for _ in range(3)]
            finally:
                await sio.disconnect()
            # Two events left in the key's minute (404s: counted), then the 429 envelope in the ack.
            assert [a["error"]["code"] for a in acks] == ["not_found", "not_found", "rate_limited"]
            assert (await http.get("/api/v1/organization", headers=org.headers)).status_code == 429
