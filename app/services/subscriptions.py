"""Event subscriptions: an organization's webhooks for what happens in it.

* ``create_subscription`` / ``list_subscriptions`` / ``get_subscription`` /
  ``update_subscription`` / ``delete_subscription``, ``rotate_secret`` (the old secret keeps
  signing for 24 hours) and ``send_test`` (one ``ping``, its result reported). Owners, admins
  and API keys with ``webhooks:read`` / ``webhooks:write``; the secret is shown on create and
  rotate only.
* ``publish`` (and ``pending``, where the data is final only inside the write, as a new
  message's seq is): inside the transaction that makes a change, one outbox row per enabled
  subscription of the organization that asked for the event, so the change and its
  deliveries commit together. Who asked for what is cached per organization and forgotten by
  every process when it changes (the bus; a short freshness bound besides), so an
  organization without subscriptions costs a dictionary lookup per event.
* Deliveries are the outbox's, as an agent's webhooks are: signed with the subscription's
  current secrets, sent to its current URL, retried, ordered per subscription and subject (a
  conversation, an entry), kept in the delivery log and replayable.
* ``failing_since`` is the first failed attempt since the last success. A subscription failing
  for ``DISABLE_AFTER`` is disabled and says why; its queued deliveries are held, not dropped,
  and go out when it is enabled again; no new events are queued for it meanwhile.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from tortoise import connections

from channels.base import DeliveryResult

from .. import outbox
from ..events import bus
from ..events.payloads import ping, push_failed, subscription_event
from ..kernel import crypto
from ..kernel.auth import Principal, require_scope
from ..kernel.db import fetch_dicts
from ..kernel.errors import Conflict, NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.chat import DeliveryAttempt, OutboxItem
from ..models.core import EventSubscription
from ..store import events as store_events
from ..store.shapes import entry_change_json
from . import deliveries, signing
from .validation import check_outbound_url

__all__ = [
    "EVENTS",
    "ALL_EVENTS",
    "KIND",
    "MAX_PER_ORGANIZATION",
    "DISABLE_AFTER",
    "TEST_WAIT_SECONDS",
    "UNSET",
    "Pending",
    "create_subscription",
    "list_subscriptions",
    "get_subscription",
    "update_subscription",
    "delete_subscription",
    "rotate_secret",
    "send_test",
    "list_deliveries",
    "pending",
    "deliveries_for",
    "publish",
    "outbox_key",
]

log = logging.getLogger("switchboard.subscriptions")

EVENTS = (
    "message.created",
    "message.updated",
    "interactive.responded",
    "interactive.expired",
    "conversation.created",
    "entry.created",
    "entry.updated",
    "entry.deleted",
    "push.failed",
)
ALL_EVENTS = "*"  # every event, those added later included
_ENTRY_EVENTS = ("entry.created", "entry.updated", "entry.deleted")
KIND = "event_subscription"  # the outbox items' kind
MAX_PER_ORGANIZATION = 20  # each is a fan-out of every event it asks for
MAX_DESCRIPTION = 500
DISABLE_AFTER = timedelta(hours=24)
DISABLED_REASON = "disabled after failing for 24 hours; enable it again once the endpoint answers"
TEST_WAIT_SECONDS = 15.0  # for the ping's attempt (the webhook timeout is a few seconds)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def outbox_key(subscription_id: str) -> str:
    """The ``secret_ref`` and ``hold_key`` of the subscription's deliveries."""
    return f"subscription:{subscription_id}"


def _owner(subscription_id: str) -> str:
    """What the subscription's secrets are bound to when encrypted."""
    return f"subscription:{subscription_id}"


# ---------------------------------------------------------------- checks


def _check_events(value: Any) -> list[str]:
    known = f"known events: {', '.join(EVENTS)} (or \"{ALL_EVENTS}\" for all)"
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise ValidationFailed(details={"events": [f"must be a non-empty list of event names; {known}"]})
    unknown = [e for e in value if e not in EVENTS and e != ALL_EVENTS]
    if unknown:
        raise ValidationFailed(details={"events": [f"unknown event '{e}'; {known}" for e in unknown]})
    return list(dict.fromkeys(value))


# What a caller must be able to read to receive an event: a subscription is a way of reading,
# so webhooks:write alone does not open conversations or tables to a key.
_READ_SCOPE = {
    "message.created": "conversations:read",
    "message.updated": "conversations:read",
    "interactive.responded": "conversations:read",
    "interactive.expired": "conversations:read",
    "conversation.created": "conversations:read",
    "entry.created": "data.tables:read",
    "entry.updated": "data.tables:read",
    "entry.deleted": "data.tables:read",
    "push.failed": "push:write",
}


def _check_event_scopes(principal: Principal, names: list[str]) -> None:
    wanted = EVENTS if ALL_EVENTS in names else names
    for scope in dict.fromkeys(_READ_SCOPE[e] for e in wanted if e in _READ_SCOPE):
        require_scope(principal, scope)


def _check_description(value: Any) -> str:
    text = (value or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise ValidationFailed(details={"description": [f"must be at most {MAX_DESCRIPTION} characters"]})
    return str(text)


async def _check_url(value: Any, allow_private: bool) -> str:
    url = await check_outbound_url("url", value, allow_private=allow_private)
    if url is None:
        raise ValidationFailed(details={"url": ["is required"]})
    return url


# ---------------------------------------------------------------- manage


async def create_subscription(
    principal: Principal, *, url: Any, events: Any, description: Any = None, allow_private: bool = False
) -> tuple[EventSubscription, str]:
    """Create a subscription; return it with its signing secret (the only time it is shown)."""
    require_scope(principal, "webhooks:write")
    checked_url = await _check_url(url, allow_private)
    names = _check_events(events)
    _check_event_scopes(principal, names)
    text = _check_description(description)
    org_id = principal.org_id
    if await EventSubscription.filter(organization_id=org_id).count() >= MAX_PER_ORGANIZATION:
        raise Conflict(
            f"An organization can have at most {MAX_PER_ORGANIZATION} event subscriptions.",
            code="too_many_subscriptions",
        )
    subscription_id = new_id("webhook")
    secret = signing.new()
    async with atomic():
        subscription = await EventSubscription.create(
            id=subscription_id,
            organization_id=org_id,
            url=checked_url,
            events=names,
            description=text,
            signing_secret=signing.seal(_owner(subscription_id), secret),
            created_by_id=principal.user.id if principal.user is not None else None,
        )
        await _changed(org_id)
    return subscription, secret


async def list_subscriptions(principal: Principal) -> list[EventSubscription]:
    """Oldest first; an organization has at most ``MAX_PER_ORGANIZATION``."""
    require_scope(principal, "webhooks:read")
    return list(await EventSubscription.filter(organization_id=principal.org_id).order_by("created_at", "id"))


async def _find(principal: Principal, subscription_id: str) -> EventSubscription:
    found = await EventSubscription.get_or_none(id=subscription_id, organization_id=principal.org_id)
    if found is None:
        raise NotFound("Event subscription not found.")
    return found


async def get_subscription(principal: Principal, subscription_id: str) -> EventSubscription:
    require_scope(principal, "webhooks:read")
    return await _find(principal, subscription_id)


async def update_subscription(
    principal: Principal,
    subscription_id: str,
    *,
    url: Any = UNSET,
    events: Any = UNSET,
    description: Any = UNSET,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> EventSubscription:
    """Change what is given. Enabling a disabled subscription clears why it was disabled and
    its failure record, and sends what was held meanwhile."""
    require_scope(principal, "webhooks:write")
    subscription = await _find(principal, subscription_id)
    # Only what the request names is written: a rotation or an automatic disable that lands
    # while this one checks its URL (a DNS lookup) is not written back over.
    changed: list[str] = []
    if url is not UNSET:
        subscription.url = await _check_url(url, allow_private)
        changed.append("url")
    if events is not UNSET:
        subscription.events = _check_events(events)
        _check_event_scopes(principal, subscription.events)
        changed.append("events")
    if description is not UNSET:
        subscription.description = _check_description(description)
        changed.append("description")
    if enabled is True:
        subscription.enabled = True
        subscription.disabled_reason = subscription.disabled_at = subscription.failing_since = None
        changed += ["enabled", "disabled_reason", "disabled_at", "failing_since"]
    elif enabled is False:
        subscription.enabled = False
        subscription.disabled_reason, subscription.disabled_at = "disabled on request", utcnow()
        changed += ["enabled", "disabled_reason", "disabled_at"]
    async with atomic():
        if changed:
            await subscription.save(update_fields=[*changed, "updated_at"])
        # The hold follows the state this transaction saved (as for agents); untouched when
        # the request did not name ``enabled``.
        if enabled is True:
            await outbox.release(outbox_key(subscription.id))
        elif enabled is False:
            await outbox.hold(outbox_key(subscription.id))
        await _changed(principal.org_id)
    return await _find(principal, subscription_id)


async def delete_subscription(principal: Principal, subscription_id: str) -> None:
    """Delete it and cancel its unfinished deliveries (they stay in the log, cancelled)."""
    require_scope(principal, "webhooks:write")
    subscription = await _find(principal, subscription_id)
    key = outbox_key(subscription.id)
    async with atomic():
        unfinished = await OutboxItem.filter(
            organization_id=principal.org_id, secret_ref=key, status__in=("pending", "delivering")
        ).values_list("id", flat=True)
        await outbox.cancel([str(i) for i in unfinished], "cancelled: the subscription was deleted")
        await outbox.release(key)
        await subscription.delete()
        await _changed(principal.org_id)


async def rotate_secret(principal: Principal, subscription_id: str) -> tuple[EventSubscription, str]:
    """A new signing secret; the old one keeps signing (a second ``v1=``) for 24 hours."""
    require_scope(principal, "webhooks:write")
    subscription = await _find(principal, subscription_id)
    rotation = signing.rotate(_owner(subscription.id), subscription.signing_secret)
    # Conditional on the secret read: of two rotations at once, one wins and the other is told.
    if not await EventSubscription.filter(id=subscription.id, signing_secret=subscription.signing_secret).update(
        signing_secret=rotation.stored,
        previous_signing_secret=rotation.previous,
        previous_secret_expires_at=rotation.previous_expires_at,
        updated_at=utcnow(),
    ):
        raise Conflict("The signing secret was rotated by another request just now.", code="rotation_conflict")
    await subscription.refresh_from_db()
    return subscription, rotation.secret


async def send_test(
    principal: Principal, subscription_id: str, *, wait: float = TEST_WAIT_SECONDS
) -> tuple[OutboxItem, list[DeliveryAttempt], bool]:
    """One ``ping`` through the outbox, signed and sent like every event and kept in the
    delivery log; answered once it has been tried (or after ``wait``), as the log shows it.
    Ordered with nothing, held by nothing (a disabled subscription's endpoint can be tried
    before it is enabled again) and tried once: a failed ping is reported, not retried."""
    require_scope(principal, "webhooks:write")
    require_scope(principal, "webhooks:read")  # the answer is the delivery log's
    subscription = await _find(principal, subscription_id)
    now = utcnow()
    body = _body("ping", principal.org_id, ping(subscription.id), now)
    delivery_id = await outbox.enqueue(
        organization_id=principal.org_id,
        channel="webhook",
        kind=KIND,
        event="ping",
        target=subscription.url,
        body=body,
        secret_ref=outbox_key(subscription.id),
        retry=False,
        now=now,
    )
    await outbox.wait_attempted([delivery_id], wait)
    return await deliveries.get_delivery(principal, delivery_id)


async def list_deliveries(
    principal: Principal, subscription_id: str, *, status: str | None = None, limit: int = 50, cursor: str | None = None
) -> tuple[list[OutboxItem], str | None]:
    """The subscription's deliveries, newest first (the delivery log, narrowed)."""
    subscription = await get_subscription(principal, subscription_id)
    return await deliveries.list_deliveries(
        principal, status=status, kind=KIND, secret_ref=outbox_key(subscription.id), limit=limit, cursor=cursor
    )


# ---------------------------------------------------------------- who subscribes to what


@dataclass(frozen=True)
class _Subscriber:
    id: str
    url: str
    events: frozenset[str]

    def wants(self, event: str) -> bool:
        return event in self.events or ALL_EVENTS in self.events


# organization id -> (when read, its enabled subscriptions). A change forgets the entry in
# every process (``_changed``); ``_FRESH_SECONDS`` bounds how long a lost notice could leave
# another process with an old list.
_cache: dict[str, tuple[float, tuple[_Subscriber, ...]]] = {}
_FRESH_SECONDS = 2.0
_CACHE_MAX = 10_000
# Bumped by every change: a list read while one happened is used but not cached.
_epoch = 0
_CHANGED = "subscriptions.changed"
_NOBODY = "internal:subscriptions"  # a room no client joins: the notice is for the processes


async def _subscribers(organization_id: str) -> tuple[_Subscriber, ...]:
    now = time.monotonic()
    hit = _cache.get(organization_id)
    if hit is not None and now - hit[0] < _FRESH_SECONDS:
        return hit[1]
    epoch = _epoch
    rows = await fetch_dicts(
        "SELECT id, url, events FROM event_subscriptions WHERE organization_id = ? AND enabled = ?",
        [organization_id, True],
    )
    found = tuple(
        _Subscriber(str(r["id"]), str(r["url"]), frozenset(json.loads(r["events"]) if isinstance(r["events"], str) else r["events"]))
        for r in rows
    )
    if epoch == _epoch:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[organization_id] = (now, found)
    return found


def _forget(organization_id: str) -> None:
    global _epoch
    _epoch += 1
    _cache.pop(organization_id, None)


async def _changed(organization_id: str) -> None:
    """Once the change commits, every process forgets the organization's list."""
    await bus.emit_on_commit(_CHANGED, [_NOBODY], {"organization_id": organization_id})


def _heard(payload: Mapping[str, Any]) -> None:
    _forget(str(payload.get("organization_id")))


bus.listen(_CHANGED, _heard)


# ---------------------------------------------------------------- publishing


_seq_lock = threading.Lock()  # rows are made on the loop's thread or, on SQLite, a writer's
_last_seq = 0


def _next_seq() -> int:
    """Microseconds now, taken inside the write (so a subject's events go out in commit
    order), and strictly increasing in this process (two events of one write never tie)."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(_last_seq + 1, time.time_ns() // 1000)
        return _last_seq


def _body(event: str, organization_id: str, data: Mapping[str, Any], now: datetime) -> str:
    envelope = subscription_event(
        event, event_id=new_id("event"), organization_id=organization_id, created_at=now, data=data
    )
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Pending:
    """One event's deliveries to the organization's subscribers, made by ``rows`` once its
    data is final (inside the write that causes it)."""

    organization_id: str
    event: str
    subject: str  # what the event is about: its deliveries to one subscription keep its order
    subscribers: tuple[_Subscriber, ...]
    now: datetime

    def rows(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The outbox rows, one per subscriber (plain computation: safe in a write's thread)."""
        body = _body(self.event, self.organization_id, data, self.now)
        seq = _next_seq()
        return [
            outbox.row(
                organization_id=self.organization_id,
                channel="webhook",
                kind=KIND,
                event=self.event,
                target=s.url,
                body=body,
                ordering_key=f"{s.id}:{self.subject}",
                ordering_seq=seq,
                secret_ref=outbox_key(s.id),
                hold_key=outbox_key(s.id),
                now=self.now,
            )
            for s in self.subscribers
        ]


async def pending(organization_id: str, event: str, subject: str) -> Pending | None:
    """``event``'s deliveries to be made, or None when no enabled subscription wants it."""
    wanting = tuple(s for s in await _subscribers(organization_id) if s.wants(event))
    return Pending(organization_id, event, subject, wanting, utcnow()) if wanting else None


async def deliveries_for(organization_id: str, event: str, subject: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The outbox rows of ``event`` for a caller that writes them with its own change."""
    found = await pending(organization_id, event, subject)
    return found.rows(data) if found is not None else []


async def publish(organization_id: str, event: str, subject: str, data: Mapping[str, Any]) -> None:
    """Queue ``event`` for the organization's subscribers in the current transaction."""
    await outbox.enqueue_rows(await deliveries_for(organization_id, event, subject, data))


async def _entries_changed(batch: list[Any]) -> None:
    """The store's entry changes, in the write's transaction: one insert for the batch."""
    rows: list[dict[str, Any]] = []
    for change in batch:
        if isinstance(change, store_events.EntryChanged):
            rows += await deliveries_for(change.organization_id, change.type, change.entry_id, entry_change_json(change))
    await outbox.enqueue_rows(rows)


async def _wants_entries(organization_id: str) -> bool:
    return any(s.wants(e) for s in await _subscribers(organization_id) for e in _ENTRY_EVENTS)


store_events.subscribe(_entries_changed, phase=store_events.IN_TRANSACTION, wants=_wants_entries, batched=True)


async def _push_failed(item: dict[str, Any], result: DeliveryResult) -> None:
    """A push that failed for good, in the transaction that records it."""
    if item.get("kind") != "push":
        return
    data = push_failed(
        item, gone=result.outcome == "gone", status_code=result.status_code, error=result.error, failed_at=utcnow()
    )
    await publish(str(item["organization_id"]), "push.failed", str(item.get("group_id") or item["id"]), data)


outbox.on_failed(_push_failed)


# ---------------------------------------------------------------- delivering


async def _resolve(subscription_ids: list[str]) -> dict[str, outbox.Recipient]:
    """Asked at every attempt: the current secrets and URL (a deleted subscription is absent,
    so its deliveries are cancelled)."""
    now = utcnow()
    out: dict[str, outbox.Recipient] = {}
    for s in await EventSubscription.filter(id__in=subscription_ids):
        try:
            secrets = signing.current(
                _owner(s.id), s.signing_secret, s.previous_signing_secret, s.previous_secret_expires_at, now
            )
        except crypto.CryptoError:
            log.error("subscription %s: its signing secret does not decrypt; check SWITCHBOARD_SECRET_KEY", s.id)
            out[s.id] = outbox.Recipient(
                target=s.url, error="signing secret cannot be decrypted (check SWITCHBOARD_SECRET_KEY)"
            )
            continue
        out[s.id] = outbox.Recipient(secrets=secrets, target=s.url)
    return out


outbox.register_resolver("subscription", _resolve)


async def _recorded(attempts: list[tuple[dict[str, Any], DeliveryResult, str]]) -> None:
    """Every attempt, in the transaction that records it: a success clears the failure
    record; a failure starts it, and one that has lasted ``DISABLE_AFTER`` disables the
    subscription (its queued deliveries are held)."""
    now = utcnow()
    ok: set[str] = set()
    failing: set[str] = set()
    for item, _, status in attempts:
        subscription_id = str(item.get("secret_ref") or "").partition(":")[2]
        (ok if status == "succeeded" else failing).add(subscription_id)
    failing -= ok  # the endpoint answered: whatever else failed, it is not down
    if ok:
        await EventSubscription.filter(id__in=ok, failing_since__isnull=False).update(failing_since=None)
    for subscription_id in sorted(failing):  # one order of row locks for every process
        await EventSubscription.filter(id=subscription_id, failing_since__isnull=True).update(failing_since=now)
        disabled = await EventSubscription.filter(
            id=subscription_id, enabled=True, failing_since__lte=now - DISABLE_AFTER
        ).update(enabled=False, disabled_reason=DISABLED_REASON, disabled_at=now, updated_at=now)
        if disabled:
            organization_id = await EventSubscription.filter(id=subscription_id).values_list("organization_id", flat=True)
            await outbox.hold(outbox_key(subscription_id))
            await _changed(str(organization_id[0]))
            log.warning("subscription %s: disabled after failing for %s", subscription_id, DISABLE_AFTER)


outbox.on_recorded(KIND, _recorded)
