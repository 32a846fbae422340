from __future__ import annotations

from typing import Literal

from quart import Blueprint
from tortoise import connections
from typing_extensions import TypedDict

from .documented import documented

bp = Blueprint("health", __name__)


class Health(TypedDict):
    status: Literal["ok", "unavailable"]


@bp.get("/healthz")
@documented("Health: whether the database answers", auth=False, rate_limited=False, also={503: Health})
async def healthz() -> tuple[Health, int]:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return {"status": "unavailable"}, 503
    return {"status": "ok"}, 200
