"""``GET /api/v1/usage``: what the organization's custom agents cost, by day or by agent."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, request

from ...kernel.timefmt import iso, utcnow
from ...services import agent_usage
from .request_io import actor, request_id

bp = Blueprint("usage", __name__, url_prefix="/api/v1")


@bp.get("/usage")
async def usage() -> dict[str, Any]:
    principal = await actor()
    r = await agent_usage.report(
        principal,
        start_date=request.args.get("start_date"),
        end_date=request.args.get("end_date"),
        breakdown=request.args.get("breakdown"),
    )
    name = "date" if r.breakdown == "day" else "agent_id"
    return {
        "success": True,
        "data": {
            "period": {"start": iso(r.start), "end": iso(r.end)},
            "breakdown": r.breakdown,
            "messages": {"total": r.replies, "breakdown": [{name: row[name], "count": row["count"]} for row in r.rows]},
            "token_usage": {
                "prompt": r.prompt,
                "completion": r.completion,
                "total": r.prompt + r.completion,
                "breakdown": [{k: v for k, v in row.items() if k != "count"} for row in r.rows],
            },
        },
        "meta": {"requestId": request_id(), "timestamp": iso(utcnow())},
    }
