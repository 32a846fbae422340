"""``GET /api/v1/usage``: what the organization's custom agents cost, by day or by agent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...kernel.timefmt import iso, utcnow
from ...services import agent_usage
from .documented import documented
from .request_io import Body, actor, parse_query, request_id

bp = Blueprint("usage", __name__, url_prefix="/api/v1")


# Checked by the usage service (dates and the range's length); typed here for the schema.
class UsageQuery(Body):
    start_date: str | None = Field(None, description="YYYY-MM-DD or an ISO 8601 date-time; 30 days before end_date by default.")
    end_date: str | None = Field(None, description="YYYY-MM-DD or an ISO 8601 date-time; now by default.")
    breakdown: str | None = Field(None, json_schema_extra={"enum": list(agent_usage.BREAKDOWNS)}, description="day by default.")


class Period(TypedDict):
    start: str | None
    end: str | None


class MessageCounts(TypedDict):
    total: int
    breakdown: list[dict[str, Any]]  # {date or agent_id, count}


class TokenCounts(TypedDict):
    prompt: int
    completion: int
    total: int
    breakdown: list[dict[str, Any]]  # {date or agent_id, prompt, completion, total}


class UsageData(TypedDict):
    period: Period
    breakdown: str
    messages: MessageCounts
    token_usage: TokenCounts


class UsageMeta(TypedDict):
    requestId: str
    timestamp: str | None


class UsageAnswer(TypedDict):
    success: Literal[True]
    data: UsageData
    meta: UsageMeta


@bp.get("/usage")
@documented("What the organization's custom agents cost, by day or by agent", query=UsageQuery, scope="agents:read",
            role="admin")
async def usage() -> UsageAnswer:
    principal = await actor()
    args = parse_query(UsageQuery)
    r = await agent_usage.report(principal, start_date=args.start_date, end_date=args.end_date, breakdown=args.breakdown)
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
