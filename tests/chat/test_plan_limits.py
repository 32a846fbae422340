"""The contract's chat plan limits: agents, and messages per day (402 plan_limit_reached)."""

from __future__ import annotations

import json
from datetime import timedelta

from app.kernel.config import Settings
from app.models.chat import Message
from app.serving.asgi import build
from tests.chat.helpers import make_agent, make_conversation
from tests.conftest import EventRecorder


async def test_agents_and_messages_per_day(settings: Settings, tmp_path, events: EventRecorder) -> None:
    from app.services import accounts
    from tests.conftest import make_org

    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({
        "self-hosted": {"name": "Self-hosted", "limits": {}},
        "tiny": {"name": "Tiny", "limits": {"agents": 1, "messages_per_day": 3}},
    }))
    app = build(settings.with_overrides(plans_file=str(plans)), auto_migrate=False)[1]
    async with app.test_app():
        client = app.test_client()
        tiny = await accounts.bootstrap("Tiny", "owner@tiny.example", "correct horse battery", plan="tiny")
        headers = {"Authorization": f"Bearer {tiny.api_key}"}
        unlimited = await make_org("Unlimited")

        agent = await make_agent(client, headers)
        second = await client.post("/api/v1/agents", json={"name": "Two", "webhook_url": "http://127.0.0.1:9/x"}, headers=headers)
        assert second.status_code == 402
        assert (await second.get_json())["error"] == {
            "code": "plan_limit_reached",
            "message": "You have reached the maximum of 1 agents on the Tiny plan. Upgrade to create more.",
            "details": None,
        }

        conv = await make_conversation(client, headers, agent["id"])
        path = f"/api/v1/conversations/{conv['id']}"
        assert (await client.post(f"{path}/messages", json={"content": "1"}, headers=headers)).status_code == 201
        assert (await client.post(f"{path}/originate", json={"content": "2", "role": "assistant"}, headers=headers)).status_code == 201
        assert (await client.post(f"{path}/messages", json={"content": "3"}, headers=headers)).status_code == 201
        for url, body in [
            (f"{path}/messages", {"content": "4"}),
            (f"{path}/originate", {"content": "4", "role": "assistant"}),
            (f"/api/v1/agents/{agent['id']}/messages", {"conversation_id": conv["id"], "content": "4"}),
        ]:
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 402, url
            error = (await response.get_json())["error"]
            assert error["code"] == "plan_limit_reached" and "3 messages today" in error["message"]
        # A refused message was never stored, so never announced.
        assert [m["content"] for m in events.of("message.created")] == ["1", "2", "3"]

        # Other organizations are not affected; yesterday's messages do not count.
        other_agent = await make_agent(client, unlimited.headers)
        other_conv = await make_conversation(client, unlimited.headers, other_agent["id"])
        for i in range(4):
            r = await client.post(f"/api/v1/conversations/{other_conv['id']}/messages", json={"content": str(i)}, headers=unlimited.headers)
            assert r.status_code == 201
        for m in await Message.filter(conversation_id=conv["id"]):
            await Message.filter(id=m.id).update(created_at=m.created_at - timedelta(days=1))
        assert (await client.post(f"{path}/messages", json={"content": "new day"}, headers=headers)).status_code == 201
        assert [m["content"] for m in events.of("message.created")] == ["1", "2", "3", "0", "1", "2", "3", "new day"]
