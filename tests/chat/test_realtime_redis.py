"""Two server instances sharing Redis: an event emitted by one reaches a client of the other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from app.kernel.config import Settings
from tests.chat.conftest import SocketClient, running_server
from tests.conftest import TEST_REDIS_URL, free_socket, make_org, wait_for

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")


async def test_event_crosses_instances_through_redis(settings: Settings) -> None:
    settings = settings.with_overrides(redis_url=TEST_REDIS_URL)
    async with running_server(settings) as first:
        org = await make_org("Acme")
        async with httpx.AsyncClient(base_url=first.url) as http:
            agent = (await http.post("/api/v1/agents", json={"name": "Bot", "webhook_url": "http://127.0.0.1:9/hook"}, headers=org.headers)).json()["agent"]
            conv = (await http.post(f"/api/v1/agents/{agent['id']}/conversations/create", json={}, headers=org.headers)).json()["conversation"]

            # The second instance is its own process on the same database and Redis.
            sock = free_socket()
            port = sock.getsockname()[1]
            sock.close()
            env = {
                **os.environ,
                "SWITCHBOARD_DATA_DIR": str(settings.data_dir / "second"),
                "DATABASE_URL": settings.effective_database_url,
                "REDIS_URL": TEST_REDIS_URL,
                "SWITCHBOARD_PORT": str(port),
                "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOKS": "1",
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.faces.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            second = f"http://127.0.0.1:{port}"
            far = SocketClient()
            near = SocketClient()
            try:
                async with httpx.AsyncClient() as probe:
                    for _ in range(200):
                        try:
                            if (await probe.get(f"{second}/healthz")).status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await asyncio.sleep(0.05)
                await far.connect(second, org.api_key)
                await near.connect(first.url, org.api_key)
                assert (await far.call("subscribe", {"conversation_id": conv["id"]}))["success"] is True
                assert (await near.call("subscribe", {"conversation_id": conv["id"]}))["success"] is True

                sent = await http.post(
                    f"/api/v1/conversations/{conv['id']}/originate", json={"content": "via one", "role": "assistant"}, headers=org.headers
                )
                assert sent.status_code == 201
                await wait_for(lambda: far.of("message.created"))
                assert far.of("message.created")[0]["id"] == sent.json()["message"]["id"]

                # And the other way round: sent on the second, seen on the first.
                ack = await far.call("message.send", {"conversation_id": conv["id"], "content": "via two"})
                assert ack["success"] is True
                await wait_for(lambda: any(m["id"] == ack["message"]["id"] for m in near.of("message.created")))
            finally:
                for client in (far, near):
                    if client.sio.connected:
                        await client.close()
                proc.terminate()
                proc.wait(timeout=10)
