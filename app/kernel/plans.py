"""Plan limits: one mechanism for every countable resource.

The limits are configuration data (``app/plans.json``, or ``SWITCHBOARD_PLANS_FILE``). A
resource missing from a plan's ``limits`` is unlimited; the default ``self-hosted`` plan has none.
A plan's ``requests_per_minute`` is each API key's and each person's request allowance
(``app/kernel/ratelimit.py``; 0: none); a plan that names none gets the self-hosted figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Awaitable, Callable

from .errors import PlanLimitReached, ValidationFailed

__all__ = ["Plan", "load_plans", "get_plan", "enforce_limit", "RESOURCE_LABELS", "DEFAULT_REQUESTS_PER_MINUTE"]

DEFAULT_REQUESTS_PER_MINUTE = 6000

# How a resource reads in the 402 message: "the maximum of 1000 entries on the Free plan".
RESOURCE_LABELS = {
    "databases": "databases",
    "tables_per_database": "tables in this database",
    "fields_per_table": "fields in this table",
    "entries": "entries",
    "agents": "agents",
    "messages_per_day": "messages today",
    "storage_bytes": "bytes of storage",
    "dashboards": "dashboards",
    "organizations": "organizations",
    "members": "members",
    "api_keys": "API keys",
}


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    limits: dict[str, int]
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE


_plans_file: str = ""


def configure(plans_file: str) -> None:
    global _plans_file
    if plans_file != _plans_file:
        _plans_file = plans_file
        load_plans.cache_clear()


@lru_cache(maxsize=1)
def load_plans() -> dict[str, Plan]:
    path = Path(_plans_file) if _plans_file else Path(__file__).with_name("plans.json")
    raw = json.loads(path.read_text())
    return {
        key: Plan(
            key=key,
            name=value.get("name", key),
            limits=dict(value.get("limits", {})),
            requests_per_minute=int(value.get("requests_per_minute", DEFAULT_REQUESTS_PER_MINUTE)),
        )
        for key, value in raw.items()
    }


def get_plan(key: str) -> Plan:
    plans = load_plans()
    if key not in plans:
        raise ValidationFailed(
            f"Unknown plan '{key}'.", details={"plan": [f"must be one of {sorted(plans)}"]}
        )
    return plans[key]


async def enforce_limit(
    plan_key: str, resource: str, count: Callable[[], Awaitable[int]], adding: int = 1
) -> None:
    """Raise 402 ``plan_limit_reached`` if adding ``adding`` more would pass the plan's limit."""
    plan = get_plan(plan_key)
    limit = plan.limits.get(resource)
    if limit is None:
        return
    if await count() + adding > limit:
        raise PlanLimitReached(
            f"You have reached the maximum of {limit} {RESOURCE_LABELS.get(resource, resource)} "
            f"on the {plan.name} plan. Upgrade to create more."
        )
