"""What every handler shares: the caller, the parsed body, query parameters."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel
from quart import current_app, g, request

from ...kernel.auth import Principal, authenticate_token, require_scope, token_from_headers
from ...kernel.config import Settings
from ...kernel.errors import BadRequest, ValidationFailed
from ...kernel.ids import new_id
from ...kernel.storable import check_storable
from ..arguments import MAX_INT, checked, validation_details
from ..arguments import Args as Body

__all__ = [
    "Body", "actor", "parse_body", "json_object", "request_id", "settings", "query_int", "query_bool", "validation_details", "rate_limit",
]

M = TypeVar("M", bound=BaseModel)


def request_id() -> str:
    """The caller's X-Request-Id, else a new one; made on first use (one per request)."""
    rid: str | None = g.get("request_id")
    if rid is None:
        rid = g.request_id = request.headers.get("X-Request-Id") or new_id("request")
    return rid


def settings() -> Settings:
    return current_app.config["SETTINGS"]  # type: ignore[no-any-return]


async def actor(scope: str | None = None) -> Principal:
    """The authenticated caller (one lookup per request), optionally checked for a scope."""
    principal: Principal | None = g.get("principal")
    if principal is None:
        principal = await authenticate_token(token_from_headers(request.headers))
        g.principal = principal
    if scope:
        require_scope(principal, scope)
    return principal


_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
QUERY_MESSAGE = "Query parameters are invalid."


async def raw_json() -> Any:
    data = await request.get_data(as_text=False)
    assert isinstance(data, bytes)
    if not data or not data.strip():
        return {}
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise BadRequest(f"Request body is not valid JSON: {reason}", code="invalid_json") from None
    # Only JSON that spells them can hold them: skip the walk for the rest.
    check_storable(value, surrogates=bool(_ESCAPED_SURROGATE.search(data)), nul=b"\\u0000" in data)
    return value


async def json_object() -> dict[str, Any]:
    """The body as a JSON object (400 ``invalid_json``; 422 when it is another JSON value)."""
    data = await raw_json()
    if not isinstance(data, dict):
        raise ValidationFailed("Request body must be a JSON object.", details={"body": ["must be a JSON object"]})
    return data


async def parse_body(model: type[M]) -> M:
    """Parse the body as JSON (400 ``invalid_json``) and validate it (422 with per-field details)."""
    return checked(model, await json_object())


def rate_limit(bucket: str, key: str, *, per_address: bool = True) -> None:
    """Count this request against ``bucket`` for the client address (+ ``key``), or for ``key``
    alone: 429 past the limit."""
    limiter = current_app.extensions["rate_limits"][bucket]
    limiter.hit(f"{request.remote_addr}|{key}" if per_address else key)


def query_int(name: str, default: int, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(QUERY_MESSAGE, details={name: ["must be an integer"]}) from None
    if value < minimum or value > maximum:
        raise ValidationFailed(QUERY_MESSAGE, details={name: [f"must be between {minimum} and {maximum}"]})
    return value


def query_bool(name: str, default: bool = False) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ValidationFailed(QUERY_MESSAGE, details={name: ["must be true or false"]})
