"""Agents: create, list, read, update, delete, rotate the webhook signing secret."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .. import outbox
from ..kernel import crypto
from ..kernel.auth import Principal, require_scope
from ..kernel.errors import NotFound, ValidationFailed
from ..kernel.ids import new_id
from ..kernel.plans import enforce_limit
from ..kernel.timefmt import utcnow
from ..kernel.transactions import atomic
from ..models.chat import PROTOCOLS, Agent, OutboxItem
from . import agent_config, files, sealed_headers, signing
from .validation import check_outbound_url

__all__ = [
    "create_agent",
    "list_agents",
    "get_agent",
    "update_agent",
    "delete_agent",
    "rotate_secret",
    "signing_secrets",
    "delivery_url",
    "may_see_urls",
    "encrypt_stored_secrets",
    "outbox_key",
    "reply_url",
    "UNSET",
    "CONFIG_KEYS",
]

CONFIG_KEYS = agent_config.KEYS

log = logging.getLogger("switchboard.agents")



class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def outbox_key(agent_id: str) -> str:
    """The ``secret_ref`` and ``hold_key`` of the agent's deliveries: it signs them, and
    while it is disabled they are held."""
    return f"agent:{agent_id}"


def reply_url(agent_id: str) -> str | None:
    """Where the agent answers a message (named in every webhook body it receives): only under
    the configured public URL. An automation sends its API key there, so a Host header that a
    person sending a message chose must never pick it; without one the body says null and n8n's
    node answers through its credential's base URL instead."""
    base = files.public_url()
    return f"{base}/webhooks/agents/{agent_id}/reply" if base else None


def _owner(agent_id: str) -> str:
    """What the agent's secrets are bound to when encrypted (see app/kernel/crypto.py)."""
    return f"agent:{agent_id}"


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed(details={"name": ["must not be empty"]})
    if len(name) > 200:
        raise ValidationFailed(details={"name": ["must be at most 200 characters"]})
    return name


async def create_agent(
    principal: Principal,
    *,
    name: str,
    protocol: str = "webhook",
    webhook_url: str | None = None,
    test_webhook_url: str | None = None,
    enabled: bool = True,
    config: dict[str, Any] | None = None,
    webhook_headers: dict[str, Any] | None = None,
    allow_private_webhooks: bool = False,
) -> tuple[Agent, str]:
    """Create an agent; return it with its signing secret (the only time it is returned)."""
    require_scope(principal, "agents:write")
    name = _check_name(name)
    if protocol not in PROTOCOLS:
        raise ValidationFailed(details={"protocol": [f"must be one of {', '.join(PROTOCOLS)}"]})
    webhook_url = await check_outbound_url("webhook_url", webhook_url, allow_private=allow_private_webhooks)
    test_webhook_url = await check_outbound_url("test_webhook_url", test_webhook_url, allow_private=allow_private_webhooks)
    if protocol == "webhook" and webhook_url is None:
        raise ValidationFailed(details={"webhook_url": ["is required for a webhook agent"]})
    org = principal.organization
    agent_id = new_id("agent")
    checked = await agent_config.check_config(
        config or {}, organization_id=org.id, agent_id=agent_id, protocol=protocol, allow_private=allow_private_webhooks
    )
    headers = _check_webhook_headers(agent_id, webhook_headers, None)
    await enforce_limit(org.plan, "agents", lambda: Agent.filter(organization_id=org.id).count())
    secret = signing.new()
    async with atomic():
        agent = await Agent.create(
            id=agent_id,
            organization=org,
            name=name,
            protocol=protocol,
            webhook_url=webhook_url,
            test_webhook_url=test_webhook_url,
            enabled=enabled,
            config=checked,
            webhook_headers=headers,
            signing_secret=signing.seal(_owner(agent_id), secret),
        )
        if not enabled:
            await outbox.hold(outbox_key(agent_id))
    return agent, secret


# What the webhook channel sets itself; a static header may not replace it.
_RESERVED_HEADERS = ("content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent", "x-switchboard-")


def _headers_owner(agent_id: str) -> str:
    return f"agent:{agent_id}:webhook-headers"


def _check_webhook_headers(agent_id: str, value: Any, stored: dict[str, str] | None) -> dict[str, str]:
    problems: dict[str, list[str]] = {}
    headers = sealed_headers.seal(
        value, owner=_headers_owner(agent_id), before=stored, path="webhook_headers", problems=problems, reserved=_RESERVED_HEADERS
    )
    if problems:
        raise ValidationFailed(details=problems)
    return headers


def webhook_headers(agent: Agent) -> dict[str, str]:
    """The static headers as shown: names with masked values."""
    return sealed_headers.masked(agent.webhook_headers)


def may_see_urls(principal: Principal) -> bool:
    """Webhook URLs (often carrying a token of the automation platform) are for those who may
    change them: owners, admins and agents:write keys, not every member."""
    return "agents:write" in principal.scopes


async def list_agents(principal: Principal, *, limit: int = 500, offset: int = 0) -> tuple[list[Agent], bool]:
    """Oldest first, one page; the flag says whether more follow."""
    require_scope(principal, "agents:read")
    rows = list(
        await Agent.filter(organization_id=principal.org_id).order_by("created_at", "id").offset(offset).limit(limit + 1)
    )
    return rows[:limit], len(rows) > limit


async def find_agent(principal: Principal, agent_id: str) -> Agent:
    """The agent if it belongs to the principal's organization, else 404 (no scope check)."""
    agent = await Agent.get_or_none(id=agent_id, organization_id=principal.org_id)
    if agent is None:
        raise NotFound("Agent not found.")
    return agent


async def get_agent(principal: Principal, agent_id: str) -> Agent:
    require_scope(principal, "agents:read")
    return await find_agent(principal, agent_id)


async def update_agent(
    principal: Principal,
    agent_id: str,
    *,
    name: str | None = None,
    webhook_url: Any = UNSET,
    test_webhook_url: Any = UNSET,
    enabled: bool | None = None,
    test_mode: bool | None = None,
    config: dict[str, Any] | None = None,  # the settings to change; None as a value removes one
    webhook_headers: Any = UNSET,  # the whole set; masks sent back keep their values
    allow_private_webhooks: bool = False,
) -> Agent:
    require_scope(principal, "agents:write")
    agent = await find_agent(principal, agent_id)
    if name is not None:
        agent.name = _check_name(name)
    urls_before = (agent.webhook_url, agent.test_webhook_url)
    if webhook_url is not UNSET:
        agent.webhook_url = await check_outbound_url("webhook_url", webhook_url, allow_private=allow_private_webhooks)
        if agent.protocol == "webhook" and agent.webhook_url is None:
            raise ValidationFailed(details={"webhook_url": ["is required for a webhook agent"]})
    if test_webhook_url is not UNSET:
        agent.test_webhook_url = await check_outbound_url("test_webhook_url", test_webhook_url, allow_private=allow_private_webhooks)
    if (agent.webhook_url, agent.test_webhook_url) != urls_before and agent.webhook_headers:
        # The stored values were given for the old receiver: whoever points the agent elsewhere
        # sends them again (or null), so a masked value cannot be read by moving the URL.
        if webhook_headers is UNSET:
            raise ValidationFailed(details={"webhook_headers": ["must be sent again (or null) when a webhook URL changes"]})
        agent.webhook_headers = _check_webhook_headers(agent.id, webhook_headers, None)
    elif webhook_headers is not UNSET:
        agent.webhook_headers = _check_webhook_headers(agent.id, webhook_headers, agent.webhook_headers)
    if enabled is not None:
        agent.enabled = enabled
    if test_mode is not None:
        agent.test_mode = test_mode
    if agent.test_mode and not agent.test_webhook_url:
        raise ValidationFailed(details={"test_mode": ["needs a test_webhook_url"]})
    if config:
        agent.config = await agent_config.check_config(
            config, organization_id=principal.org_id, agent_id=agent.id, protocol=agent.protocol,
            current=agent.config or {}, allow_private=allow_private_webhooks,
        )
    async with atomic():
        await agent.save()
        # A disabled agent's deliveries wait; they go out when it is enabled again. The hold
        # follows the state saved in this same transaction, so overlapping updates cannot
        # leave an enabled agent held (or a disabled one free).
        if agent.enabled:
            await outbox.release(outbox_key(agent.id))
        else:
            await outbox.hold(outbox_key(agent.id))
    return agent


async def delete_agent(principal: Principal, agent_id: str) -> None:
    """Delete the agent and cancel its unfinished deliveries in the same transaction (their
    conversations go with it; nothing of it is sent afterwards)."""
    require_scope(principal, "agents:write")
    agent = await find_agent(principal, agent_id)
    async with atomic():
        unfinished = await OutboxItem.filter(agent_id=agent.id, status__in=("pending", "delivering")).values_list(
            "id", flat=True
        )
        await outbox.cancel([str(i) for i in unfinished], "cancelled: the agent was deleted")
        await outbox.release(outbox_key(agent.id))
        await agent.delete()


async def rotate_secret(principal: Principal, agent_id: str) -> tuple[Agent, str]:
    """A new signing secret; the old one keeps signing (second ``v1=``) for 24 hours."""
    require_scope(principal, "agents:write")
    agent = await find_agent(principal, agent_id)
    rotation = signing.rotate(_owner(agent.id), agent.signing_secret)
    agent.signing_secret = rotation.stored
    agent.previous_signing_secret = rotation.previous
    agent.previous_secret_expires_at = rotation.previous_expires_at
    await agent.save()
    return agent, rotation.secret


def signing_secrets(agent: Agent, now: datetime | None = None) -> tuple[str, ...]:
    """The secrets that sign right now, newest first, decrypted (``CryptoError`` if the
    server's key does not open them)."""
    return signing.current(
        _owner(agent.id), agent.signing_secret, agent.previous_signing_secret, agent.previous_secret_expires_at, now
    )


def delivery_url(agent: Agent) -> str | None:
    """Where the agent's webhooks go right now."""
    if agent.test_mode and agent.test_webhook_url:
        return agent.test_webhook_url
    return agent.webhook_url


async def _resolve_agents(agent_ids: list[str]) -> dict[str, outbox.Recipient]:
    """The outbox asks at every attempt: current secrets and URL (an agent that is gone is
    absent, so its deliveries are cancelled)."""
    now = utcnow()
    out: dict[str, outbox.Recipient] = {}
    for a in await Agent.filter(id__in=agent_ids):
        url = delivery_url(a)
        try:
            out[a.id] = outbox.Recipient(
                secrets=signing_secrets(a, now), target=url, headers=sealed_headers.unseal(a.webhook_headers, _headers_owner(a.id))
            )
        except crypto.CryptoError:
            # A key problem is the operator's to fix: retry later rather than send unsigned.
            log.error("agent %s: its signing secret does not decrypt; check SWITCHBOARD_SECRET_KEY", a.id)
            out[a.id] = outbox.Recipient(
                target=url, error="signing secret cannot be decrypted (check SWITCHBOARD_SECRET_KEY)"
            )
    return out


async def encrypt_stored_secrets() -> int:
    """Encrypt signing secrets stored before encryption at rest (run at start; idempotent,
    and safe next to another instance doing the same: each write is conditional)."""
    done = 0
    for column in ("signing_secret", "previous_signing_secret"):
        legacy = await Agent.filter(**{f"{column}__startswith": "whsec_"}).values_list("id", column)
        for agent_id, plain in legacy:
            done += await Agent.filter(id=agent_id, **{column: plain}).update(**{column: signing.seal(_owner(agent_id), plain)})
    return done


outbox.register_resolver("agent", _resolve_agents)
