"""Small helpers shared by the chat tests (plain functions, not fixtures)."""

from __future__ import annotations

from typing import Any


async def make_agent(client: Any, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Support Bot", "protocol": "webhook", "webhook_url": "http://127.0.0.1:9/hook", **fields}
    response = await client.post("/api/v1/agents", json=body, headers=headers)
    assert response.status_code == 201, await response.get_data(as_text=True)
    return (await response.get_json())["agent"]  # type: ignore[no-any-return]


async def make_conversation(client: Any, headers: dict[str, str], agent_id: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/agents/{agent_id}/conversations/create", json=fields, headers=headers)
    assert response.status_code == 201, await response.get_data(as_text=True)
    return (await response.get_json())["conversation"]  # type: ignore[no-any-return]
