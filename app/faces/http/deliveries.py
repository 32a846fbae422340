from __future__ import annotations

from typing import Literal

from pydantic import Field
from quart import Blueprint
from typing_extensions import TypedDict

from ...kernel.auth import Principal
from ...models.chat import DeliveryAttempt, OutboxItem
from ...services import agents, deliveries
from ..arguments import PAGE_MAX
from ..results import CursorMeta
from .chat_shapes import AttemptJSON, DeliveryJSON, attempt_json, delivery_json
from .documented import documented
from .request_io import Body, actor, parse_query

bp = Blueprint("deliveries", __name__, url_prefix="/api/v1/deliveries")


class DeliveryList(Body):
    limit: int = Field(50, ge=1, le=PAGE_MAX)
    status: str | None = Field(None, json_schema_extra={"enum": list(deliveries.STATUSES)})
    agent_id: str | None = None
    cursor: str | None = Field(None, description="meta.next_cursor of the previous page.")


class DeliveryPage(TypedDict):
    deliveries: list[DeliveryJSON]
    meta: CursorMeta


@bp.get("")
@documented("List outbound deliveries (webhooks, callbacks, pushes, emails), newest first", query=DeliveryList,
            scope="agents:read", role="admin")
async def list_deliveries() -> DeliveryPage:
    args = parse_query(DeliveryList)
    principal = await actor()
    rows, next_cursor = await deliveries.list_deliveries(
        principal, status=args.status, agent_id=args.agent_id, limit=args.limit, cursor=args.cursor
    )
    show_url = agents.may_see_urls(principal)
    return {"deliveries": [delivery_json(d, show_url=show_url) for d in rows], "meta": {"next_cursor": next_cursor}}


class DeliveryDetailJSON(DeliveryJSON):
    body: str | None  # the exact bytes sent, for those who may read them
    attempt_log: list[AttemptJSON]  # the newest attempts, oldest first
    attempt_log_truncated: bool


def detail_json(
    principal: Principal, item: OutboxItem, attempts: list[DeliveryAttempt], truncated: bool, *, show_url: bool
) -> DeliveryDetailJSON:
    """One delivery as the log shows it, with its body and attempts."""
    return DeliveryDetailJSON(
        **delivery_json(item, show_url=show_url),
        # the payload carries a message's text: for those who may read conversations;
        # a sealed body (a one-time token) is for nobody
        body=item.body if deliveries.may_read_body(principal, item) else None,
        attempt_log=[attempt_json(a) for a in attempts],
        attempt_log_truncated=truncated,
    )


class DeliveryAnswer(TypedDict):
    delivery: DeliveryDetailJSON


class DeliveryChanged(TypedDict):
    success: Literal[True]
    delivery: DeliveryJSON


@bp.get("/<delivery_id>")
@documented("Get a delivery with its body and attempt log", scope="agents:read", role="admin")
async def get_delivery(delivery_id: str) -> DeliveryAnswer:
    principal = await actor()
    item, attempts, truncated = await deliveries.get_delivery(principal, delivery_id)
    return {"delivery": detail_json(principal, item, attempts, truncated, show_url=agents.may_see_urls(principal))}


@bp.post("/<delivery_id>/retry")
@documented("Send a finished delivery again", status=202, scope="agents:write", role="admin", errors=(409,))
async def retry_delivery(delivery_id: str) -> tuple[DeliveryChanged, int]:
    principal = await actor()
    item = await deliveries.retry_delivery(principal, delivery_id)
    return {"success": True, "delivery": delivery_json(item, show_url=agents.may_see_urls(principal))}, 202


@bp.post("/<delivery_id>/cancel")
@documented("Cancel a pending delivery", scope="agents:write", role="admin", errors=(409,))
async def cancel_delivery(delivery_id: str) -> DeliveryChanged:
    principal = await actor()
    item = await deliveries.cancel_delivery(principal, delivery_id)
    return {"success": True, "delivery": delivery_json(item, show_url=agents.may_see_urls(principal))}
