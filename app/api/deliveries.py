from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ..services import deliveries
from .chat_shapes import attempt_json, delivery_json
from .http import actor, query_int

bp = Blueprint("deliveries", __name__, url_prefix="/api/v1/deliveries")


@bp.get("")
async def list_deliveries() -> dict[str, Any]:
    limit = query_int("limit", 50, minimum=1, maximum=200)
    rows, next_cursor = await deliveries.list_deliveries(
        await actor(),
        status=request.args.get("status") or None,
        agent_id=request.args.get("agent_id") or None,
        limit=limit,
        cursor=request.args.get("cursor") or None,
    )
    return {"deliveries": [delivery_json(d) for d in rows], "meta": {"next_cursor": next_cursor}}


@bp.get("/<delivery_id>")
async def get_delivery(delivery_id: str) -> dict[str, Any]:
    item, attempts, truncated = await deliveries.get_delivery(await actor(), delivery_id)
    return {
        "delivery": {
            **delivery_json(item),
            "body": item.body,
            "attempt_log": [attempt_json(a) for a in attempts],
            "attempt_log_truncated": truncated,
        }
    }


@bp.post("/<delivery_id>/retry")
async def retry_delivery(delivery_id: str) -> tuple[dict[str, Any], int]:
    item = await deliveries.retry_delivery(await actor(), delivery_id)
    return {"success": True, "delivery": delivery_json(item)}, 202
