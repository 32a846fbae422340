"""Two gateway processes sharing Redis: a subscription made on one is used by the other at
once (its cached list is forgotten on notice, not when it would go stale)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from app.kernel.config import Settings
from app.services import subscriptions
from tests.chat.conftest import running_server
from tests.conftest import TEST_REDIS_URL, free_socket, make_org, wait_for
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")


async def test_a_subscription_made_elsewhere_applies_at_once(
    settings: Settings, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subscriptions, "_FRESH_SECONDS", 3600.0)  # only the notice can refresh it
    settings = settings.with_overrides(redis_url=TEST_REDIS_URL)
    async with running_server(settings) as first:
        org = await make_org("Acme")
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        env = {
            **os.environ,
            "SWITCHBOARD_DATA_DIR": str(settings.data_dir),  # the same secret key: one deployment
            "DATABASE_URL": settings.effective_database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "SWITCHBOARD_PORT": str(port),
            "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS": "1",
        }
        proc = subprocess.Popen([sys.executable, "-m", "app.faces.cli", "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        second = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=first.url) as http:
                agent = (await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook"},
                                         headers=org.headers)).json()["agent"]
                conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={},
                                        headers=org.headers)).json()["conversation"]
                path = f"/api/v1/conversations/{conv['id']}/originate"
                await http.post(path, json={"content": "before", "role": "assistant"}, headers=org.headers)
                assert subscriptions._cache[org.id][1] == ()  # this process knows of none

                async with httpx.AsyncClient(base_url=second) as other:
                    for _ in range(200):
                        try:
                            if (await other.get("/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.05)
                    r = await other.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["message.created"]},
                                         headers=org.headers)
                    assert r.status_code == 201, r.text
                    receiver.secrets.append(r.json()["webhook"]["secret"])

                await wait_for(lambda: org.id not in subscriptions._cache)  # the notice, through Redis
                sent = await http.post(path, json={"content": "after", "role": "assistant"}, headers=org.headers)
                assert sent.status_code == 201
                await receiver.wait_for(lambda rx: len(rx.acknowledged) == 1)
                assert [rx.json["data"]["content"] for rx in receiver.received] == ["after"]
        finally:
            proc.terminate()
            proc.wait(timeout=10)
