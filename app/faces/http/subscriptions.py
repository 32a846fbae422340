"""Event subscriptions (organization webhooks): ``/api/v1/webhooks``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field as Arg
from quart import Blueprint, request
from typing_extensions import TypedDict

from ...kernel.timefmt import iso
from ...models.core import EventSubscription
from ...services import subscriptions
from ..arguments import PAGE_MAX
from .chat_shapes import DeliveryJSON, delivery_json
from .deliveries import DeliveryDetailJSON, detail_json
from .documented import documented
from .request_io import Body, actor, parse_body, query_int, settings

bp = Blueprint("subscriptions", __name__, url_prefix="/api/v1/webhooks")

_EVENTS = f"Event names: {', '.join(subscriptions.EVENTS)}; or \"*\" for every event, later ones included."


class SubscriptionCreate(Body):
    url: str = Arg(description="Where events are POSTed (http or https).")
    events: list[str] = Arg(description=_EVENTS)
    description: str | None = Arg(None, description="What the endpoint is for (at most 500 characters).")


class SubscriptionChanges(Body):
    url: str | None = Arg(None, description="Where events are POSTed; queued deliveries follow the change.")
    events: list[str] | None = Arg(None, description=_EVENTS)
    description: str | None = None
    enabled: bool | None = Arg(
        None, description="false pauses it (deliveries wait); true resumes it and clears a failure record."
    )


class DeliveryQuery(Body):
    status: Literal["pending", "delivering", "succeeded", "failed", "cancelled"] | None = None
    limit: int = Arg(50, ge=1, le=PAGE_MAX)
    cursor: str | None = Arg(None, description="next_cursor of the previous page.")


class SubscriptionJSON(TypedDict):
    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    status: Literal["active", "disabled"]
    disabled_reason: str | None  # why it was disabled (by hand, or after failing for 24 hours)
    disabled_at: str | None
    failing_since: str | None  # the first failed attempt since the last success
    previous_secret_expires_at: str | None  # until when the secret before a rotation still signs
    created_at: str | None
    updated_at: str | None


class CreatedSubscriptionJSON(SubscriptionJSON):
    secret: str  # shown here and after a rotation, never again


class SubscriptionCreated(TypedDict):
    success: Literal[True]
    webhook: CreatedSubscriptionJSON


class SubscriptionList(TypedDict):
    webhooks: list[SubscriptionJSON]


class SubscriptionAnswer(TypedDict):
    webhook: SubscriptionJSON


class SubscriptionChanged(TypedDict):
    success: Literal[True]
    webhook: SubscriptionJSON


class Deleted(TypedDict):
    success: Literal[True]


class SecretRotated(TypedDict):
    success: Literal[True]
    secret: str
    previous_secret_expires_at: str | None


class TestResult(TypedDict):
    success: bool  # the endpoint answered 2xx
    delivery: DeliveryDetailJSON  # as GET /api/v1/deliveries/<id> shows it


class DeliveryPage(TypedDict):
    deliveries: list[DeliveryJSON]
    meta: dict[str, str | None]  # next_cursor


def subscription_json(s: EventSubscription) -> SubscriptionJSON:
    return SubscriptionJSON(
        id=s.id,
        url=s.url,
        events=list(s.events),
        description=s.description,
        enabled=s.enabled,
        status="active" if s.enabled else "disabled",
        disabled_reason=s.disabled_reason,
        disabled_at=iso(s.disabled_at),
        failing_since=iso(s.failing_since),
        previous_secret_expires_at=iso(s.previous_secret_expires_at),
        created_at=iso(s.created_at),
        updated_at=iso(s.updated_at),
    )


@bp.post("")
@documented("Create an event subscription", body=SubscriptionCreate, status=201, scope="webhooks:write", errors=(409,),
            description="The answer carries the signing secret; it is never shown again (rotate to get a new one).")
async def create_subscription() -> tuple[SubscriptionCreated, int]:
    principal = await actor()
    body = await parse_body(SubscriptionCreate)
    subscription, secret = await subscriptions.create_subscription(
        principal, url=body.url, events=body.events, description=body.description,
        allow_private=settings().allow_private_webhooks,
    )
    return {"success": True, "webhook": CreatedSubscriptionJSON(**subscription_json(subscription), secret=secret)}, 201


@bp.get("")
@documented("List event subscriptions", scope="webhooks:read")
async def list_subscriptions() -> SubscriptionList:
    return {"webhooks": [subscription_json(s) for s in await subscriptions.list_subscriptions(await actor())]}


@bp.get("/<subscription_id>")
@documented("Get an event subscription", scope="webhooks:read")
async def get_subscription(subscription_id: str) -> SubscriptionAnswer:
    return {"webhook": subscription_json(await subscriptions.get_subscription(await actor(), subscription_id))}


@bp.patch("/<subscription_id>")
@documented("Update an event subscription", body=SubscriptionChanges, scope="webhooks:write")
async def update_subscription(subscription_id: str) -> SubscriptionChanged:
    principal = await actor()
    body = await parse_body(SubscriptionChanges)
    given = body.model_fields_set
    subscription = await subscriptions.update_subscription(
        principal,
        subscription_id,
        url=body.url if "url" in given else subscriptions.UNSET,
        events=body.events if "events" in given else subscriptions.UNSET,
        description=body.description if "description" in given else subscriptions.UNSET,
        enabled=body.enabled,
        allow_private=settings().allow_private_webhooks,
    )
    return {"success": True, "webhook": subscription_json(subscription)}


@bp.delete("/<subscription_id>")
@documented("Delete an event subscription", scope="webhooks:write",
            description="Its queued deliveries are cancelled; they stay in the delivery log.")
async def delete_subscription(subscription_id: str) -> Deleted:
    await subscriptions.delete_subscription(await actor(), subscription_id)
    return {"success": True}


@bp.post("/<subscription_id>/rotate-secret")
@documented("Rotate an event subscription's signing secret", scope="webhooks:write", errors=(409,),
            description="The previous secret keeps signing (a second v1= in the signature) for 24 hours.")
async def rotate_secret(subscription_id: str) -> SecretRotated:
    subscription, secret = await subscriptions.rotate_secret(await actor(), subscription_id)
    return {
        "success": True,
        "secret": secret,
        "previous_secret_expires_at": iso(subscription.previous_secret_expires_at),
    }


@bp.post("/<subscription_id>/test")
@documented("Send a test event (ping)", scope="webhooks:write",
            description="One signed `ping` through the outbox, tried once; answers with the delivery as the log shows "
            "it once it has been tried (or after 15 seconds).")
async def send_test(subscription_id: str) -> TestResult:
    principal = await actor()
    item, attempts, truncated = await subscriptions.send_test(principal, subscription_id)
    return {
        "success": item.status == "succeeded",
        "delivery": detail_json(principal, item, attempts, truncated, show_url=True),
    }


@bp.get("/<subscription_id>/deliveries")
@documented("List an event subscription's deliveries", query=DeliveryQuery, scope="webhooks:read",
            description="Newest first. Replay one with POST /api/v1/deliveries/<id>/retry.")
async def list_deliveries(subscription_id: str) -> DeliveryPage:
    principal = await actor()
    rows, next_cursor = await subscriptions.list_deliveries(
        principal,
        subscription_id,
        status=request.args.get("status") or None,
        limit=query_int("limit", 50, minimum=1, maximum=PAGE_MAX),
        cursor=request.args.get("cursor") or None,
    )
    return {"deliveries": [delivery_json(d) for d in rows], "meta": {"next_cursor": next_cursor}}
