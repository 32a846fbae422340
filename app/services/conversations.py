"""Conversations: create (for yourself, or with an API key for any member), list, read.

Who sees what: API keys and admin sessions see all of the organization's conversations,
members only their own. A conversation someone may not see is a 404, like another
organization's.
"""

from __future__ import annotations

from typing import Any

from ..events import bus
from ..events.payloads import conversation_json
from tortoise.exceptions import IntegrityError

from ..kernel.auth import Principal, require_scope
from ..kernel.errors import Conflict, Forbidden, NotFound, ValidationFailed
from ..kernel.ids import could_be_id, new_id
from ..models.chat import Agent, Conversation
from ..models.core import Membership
from ..kernel.pagination import newest_first, next_page
from ..kernel.transactions import atomic
from . import subscriptions
from .agents import find_agent

__all__ = [
    "create_conversation",
    "list_conversations",
    "get_conversation",
    "access_conversation",
    "recent_conversations",
    "ensure_enabled",
    "visible_sql",
    "named_by_client",
    "open_for_client",
]


def ensure_enabled(agent: Agent) -> None:
    if not agent.enabled:
        raise Conflict("This agent is disabled.", code="agent_disabled", details={"agent_id": agent.id})


async def create_conversation(
    principal: Principal, agent_id: str, *, title: str | None = None, user_id: str | None = None, client_id: str | None = None
) -> Conversation:
    require_scope(principal, "conversations:write")
    agent = await find_agent(principal, agent_id)
    ensure_enabled(agent)
    title = (title or "").strip()
    if len(title) > 500:
        raise ValidationFailed(details={"title": ["must be at most 500 characters"]})
    own_id = principal.user.id if principal.user is not None else None
    if user_id is None:
        if own_id is None:
            raise ValidationFailed(
                "No user_id was given and the API key's creator no longer exists.",
                details={"user_id": ["is required: this API key has no owning user"]},
            )
        owner_id = own_id
    else:
        if principal.kind == "session" and user_id != own_id and not principal.is_admin:
            raise Forbidden("Members can only create conversations for themselves.")
        if not await Membership.filter(
            organization_id=principal.org_id, user_id=user_id, status="active"
        ).exists():
            raise ValidationFailed(
                details={"user_id": ["must be an active member of this organization"]}
            )
        owner_id = user_id
    async with atomic():
        conv = await Conversation.create(
            id=new_id("conversation"),
            organization_id=principal.org_id,
            agent=agent,
            user_id=owner_id,
            title=title,
            client_id=client_id,
        )
        shown = conversation_json(conv)
        await bus.emit_on_commit("conversation.created", [bus.user_room(owner_id), bus.org_room(principal.org_id)], shown)
        await subscriptions.publish(principal.org_id, "conversation.created", conv.id, shown)
    return conv


MAX_CLIENT_ID = 255


async def named_by_client(principal: Principal, agent_id: str, ref: str) -> str | None:
    """The id of the agent's conversation that ``ref`` names: one of ours, or the id an
    automation gave it when it opened it (``open_for_client``); None when neither."""
    ref = ref.strip()
    found: list[Any] = []
    if could_be_id(ref):
        found = await Conversation.filter(agent_id=agent_id, organization_id=principal.org_id, id=ref).values_list("id", flat=True)
    if not found and ref and len(ref) <= MAX_CLIENT_ID:
        found = await Conversation.filter(
            agent_id=agent_id, organization_id=principal.org_id, client_id=ref
        ).values_list("id", flat=True)
    return str(found[0]) if found else None


async def open_for_client(principal: Principal, agent_id: str, ref: str, *, user_id: str | None = None) -> str:
    """The agent's conversation named ``ref``; a name we never issued opens one for
    ``user_id`` (the organization's owner when None) and is remembered for it, so the
    client's later messages with the same name land there too."""
    ref = ref.strip()
    if not ref or len(ref) > MAX_CLIENT_ID:
        raise ValidationFailed(details={"conversationId": [f"must be 1 to {MAX_CLIENT_ID} characters"]})
    await find_agent(principal, agent_id)
    found = await named_by_client(principal, agent_id, ref)
    if found is not None:
        return found
    if could_be_id(ref) and await Conversation.filter(id=ref, organization_id=principal.org_id).exists():
        raise NotFound("Conversation not found for this agent.")  # another agent's: not a name to reuse
    if user_id is None:
        owners = await Membership.filter(organization_id=principal.org_id, role="owner", status="active").order_by(
            "created_at"
        ).limit(1).values_list("user_id", flat=True)
        user_id = str(owners[0]) if owners else None
    try:
        conv = await create_conversation(principal, agent_id, user_id=user_id, client_id=ref)
    except IntegrityError:
        # Another request opened it first: both land in the same one.
        found = await named_by_client(principal, agent_id, ref)
        if found is None:
            raise
        return found
    return conv.id


def _visible(principal: Principal) -> dict[str, Any]:
    """Who sees which conversations: API keys and admins all of the organization's, members
    their own. As ORM filters; ``visible_sql`` is the same rule for hand-written queries."""
    filters: dict[str, Any] = {"organization_id": principal.org_id}
    if not principal.sees_all_conversations:
        filters["user_id"] = principal.user.id if principal.user is not None else ""
    return filters


def visible_sql(principal: Principal, alias: str = "c") -> tuple[str, list[Any]]:
    """`` AND <alias>.organization_id = ? [AND <alias>.user_id = ?]`` and its values."""
    filters = _visible(principal)
    return "".join(f" AND {alias}.{column} = ?" for column in filters), list(filters.values())


async def access_conversation(principal: Principal, conversation_id: str) -> Conversation:
    """The conversation (with its agent and owner) if the principal may see it, else 404."""
    conv = (
        await Conversation.filter(id=conversation_id, **_visible(principal))
        .select_related("agent", "user")
        .first()
    )
    if conv is None:
        raise NotFound("Conversation not found.")
    return conv


async def get_conversation(principal: Principal, conversation_id: str) -> Conversation:
    require_scope(principal, "conversations:read")
    return await access_conversation(principal, conversation_id)


async def list_conversations(
    principal: Principal, agent_id: str, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[Conversation], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    require_scope(principal, "conversations:read")
    await find_agent(principal, agent_id)
    query = Conversation.filter(agent_id=agent_id, **_visible(principal))
    return next_page(await newest_first(query, cursor, limit), limit)


async def recent_conversations(principal: Principal, agent_id: str, limit: int = 20) -> list[Conversation]:
    rows, _ = await list_conversations(principal, agent_id, limit=limit)
    return rows
