"""What custom agents cost: tokens per reply, recorded when it is stored, and reports.

``report`` is shaped after the usage report agent platforms give (``period``, a count with
its ``breakdown``, ``token_usage`` with prompt, completion, total and its ``breakdown``), by
day (UTC) or by agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ..kernel.auth import Principal, require_manager
from ..kernel.errors import ValidationFailed
from ..kernel.timefmt import parse_moment, utcnow
from ..models.chat import AgentUsage

__all__ = ["record", "report", "Report", "BREAKDOWNS", "MAX_DAYS"]

BREAKDOWNS = ("day", "agent")
MAX_DAYS = 366
DEFAULT_DAYS = 30


async def record(*, organization_id: str, agent_id: str, conversation_id: str, message_id: str, provider: str,
                 model: str, prompt_tokens: int, completion_tokens: int) -> None:
    await AgentUsage.create(
        organization_id=organization_id, agent_id=agent_id, conversation_id=conversation_id, message_id=message_id,
        provider=provider, model=model, prompt_tokens=max(0, prompt_tokens), completion_tokens=max(0, completion_tokens),
        created_at=utcnow(),
    )


@dataclass(frozen=True)
class Report:
    start: datetime
    end: datetime
    breakdown: str
    replies: int
    prompt: int
    completion: int
    rows: list[dict[str, Any]]  # per day or agent: {"date"|"agent_id", "count", "prompt", "completion", "total"}


def _bound(value: str | None, field: str, *, end: bool) -> datetime | None:
    """A date (``2026-12-01``: the whole day) or a date-time with a time zone."""
    if value is None or value == "":
        return None
    moment = parse_moment(value)
    if moment is not None:
        return moment
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("Query parameters are invalid.", details={field: ["must be a date (YYYY-MM-DD) or an ISO 8601 date-time"]}) from None
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)


async def report(principal: Principal, *, start_date: str | None, end_date: str | None, breakdown: str | None) -> Report:
    require_manager(principal, "agents:read")
    breakdown = breakdown or "day"
    problems: dict[str, list[str]] = {}
    if breakdown not in BREAKDOWNS:
        problems["breakdown"] = [f"must be one of {', '.join(BREAKDOWNS)}"]
    end = _bound(end_date, "end_date", end=True) or utcnow()
    try:
        start = _bound(start_date, "start_date", end=False) or datetime.combine(
            (end - timedelta(days=DEFAULT_DAYS - 1)).date(), time.min, tzinfo=timezone.utc
        )
    except OverflowError:  # an end date in the first days of year 1
        raise ValidationFailed("Query parameters are invalid.", details={"start_date": ["is required this close to year 1"]}) from None
    if start > end:
        problems["start_date"] = ["must not be after end_date"]
    elif end - start > timedelta(days=MAX_DAYS):
        problems["end_date"] = [f"must be at most {MAX_DAYS} days after start_date"]
    if problems:
        raise ValidationFailed("Query parameters are invalid.", details=problems)
    rows = await AgentUsage.filter(organization_id=principal.org_id, created_at__gte=start, created_at__lte=end).values_list(
        "created_at", "agent_id", "prompt_tokens", "completion_tokens"
    )
    groups: dict[str, list[int]] = {}
    replies = prompt = completion = 0
    for created_at, agent_id, p, c in rows:
        key = created_at.astimezone(timezone.utc).date().isoformat() if breakdown == "day" else str(agent_id)
        group = groups.setdefault(key, [0, 0, 0])
        group[0] += 1
        group[1] += int(p)
        group[2] += int(c)
        replies, prompt, completion = replies + 1, prompt + int(p), completion + int(c)
    name = "date" if breakdown == "day" else "agent_id"
    out = [
        {name: key, "count": n, "prompt": p, "completion": c, "total": p + c}
        for key, (n, p, c) in sorted(groups.items())
    ]
    return Report(start, end, breakdown, replies, prompt, completion, out)
