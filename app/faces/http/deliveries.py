from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...services import agents, deliveries
from .chat_shapes import attempt_json, delivery_json
from .request_io import actor, query_int

bp = Blueprint("deliveries", __name__, url_prefix="/api/v1/deliveries")


@bp.get("")
async def list_deliveries() -> dict[str, Any]:
    limit = query_int("limit", 50, minimum=1, maximum=200)
    principal = await actor()
    rows, next_cursor = await deliveries.list_deliveries(
        principal,
        status=request.args.get("status") or None,
        agent_id=request.args.get("agent_id") or None,
        limit=limit,
        cursor=request.args.get("cursor") or None,
    )
    show_url = agents.may_see_urls(principal)
    return {"deliveries": [delivery_json(d, show_url=show_url) for d in rows], "meta": {"next_cursor": next_cursor}}


@bp.get("/<delivery_id>")
async def get_delivery(delivery_id: str) -> dict[str, Any]:
    principal = await actor()
    item, attempts, truncated = await deliveries.get_delivery(principal, delivery_id)
    return {
        "delivery": {
            **delivery_json(item, show_url=agents.may_see_urls(principal)),
            # the payload carries a message's text: for those who may read conversations;
            # a sealed body (a one-time token) is for nobody
            "body": item.body if deliveries.may_read_body(principal, item) else None,
            "attempt_log": [attempt_json(a) for a in attempts],
            "attempt_log_truncated": truncated,
        }
    }


@bp.post("/<delivery_id>/retry")
async def retry_delivery(delivery_id: str) -> tuple[dict[str, Any], int]:
    principal = await actor()
    item = await deliveries.retry_delivery(principal, delivery_id)
    return {"success": True, "delivery": delivery_json(item, show_url=agents.may_see_urls(principal))}, 202


@bp.post("/<delivery_id>/cancel")
async def cancel_delivery(delivery_id: str) -> dict[str, Any]:
    principal = await actor()
    item = await deliveries.cancel_delivery(principal, delivery_id)
    return {"success": True, "delivery": delivery_json(item, show_url=agents.may_see_urls(principal))}
