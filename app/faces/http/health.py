from __future__ import annotations

from quart import Blueprint
from tortoise import connections

bp = Blueprint("health", __name__)


@bp.get("/healthz")
async def healthz() -> tuple[dict[str, str], int]:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # noqa: BLE001 - any database failure means unhealthy
        return {"status": "unavailable"}, 503
    return {"status": "ok"}, 200
