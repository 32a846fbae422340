"""What the OpenAPI document says about a route, stated beside the route.

Each handler carries one ``@documented(...)`` under its ``@bp.<method>(...)``: a summary, the
body and query models it validates with, the scope and role it needs, and the error statuses
it can answer with beyond those every route of its kind has. The answer's schema is the
handler's return annotation (a TypedDict; ``tuple[T, int]`` for ``(body, status)``; a bare
``Response`` for no content). ``openapi.py`` builds the document from these and the URL map::

    @bp.post("/agents/<agent_id>/conversations/create")
    @documented("Start a conversation", body=CreateConversationBody, status=201, scope="conversations:write",
                errors=(409,))
    async def create_conversation(agent_id: str) -> tuple[ConversationCreated, int]: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

from pydantic import BaseModel

__all__ = ["Doc", "documented", "doc_of"]

F = TypeVar("F", bound=Callable[..., Any])

_ATTR = "__openapi_doc__"


@dataclass(frozen=True)
class Doc:
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None  # the body
    body_types: tuple[str, ...] = ("application/json",)  # the media types it may come in
    query: type[BaseModel] | None = None  # query parameters, one per field
    scope: str | None = None  # what an API key needs (people: through their role); None: any caller
    role: Literal["admin"] | None = None  # people need the owner or admin role
    auth: bool = True  # False: no credentials needed
    errors: tuple[int, ...] = ()
    rate_limited: bool = True  # False: not counted against the caller's quota (no 429)
    description: str = ""  # else the handler's docstring
    also: dict[int, Any] = field(default_factory=dict)  # other answers: status -> type


def documented(
    summary: str,
    *,
    status: int = 200,
    body: type[BaseModel] | None = None,
    body_types: tuple[str, ...] = ("application/json",),
    query: type[BaseModel] | None = None,
    scope: str | None = None,
    role: Literal["admin"] | None = None,
    auth: bool = True,
    errors: tuple[int, ...] = (),
    rate_limited: bool = True,
    description: str = "",
    also: dict[int, Any] | None = None,
) -> Callable[[F], F]:
    """Attach the route's :class:`Doc` to its handler (see the module docstring)."""
    doc = Doc(summary, status, body, body_types, query, scope, role, auth, errors, rate_limited, description, also or {})

    def attach(handler: F) -> F:
        setattr(handler, _ATTR, doc)
        return handler

    return attach


def doc_of(handler: Callable[..., Any]) -> Doc | None:
    return getattr(handler, _ATTR, None)
