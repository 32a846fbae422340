"""What every handler shares: the caller, the parsed body, query parameters."""

from __future__ import annotations

import json
import re
from typing import Any, Awaitable, Callable, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Quart, current_app, g, request

from ...kernel.auth import Principal, authenticate_token, require_scope, token_from_headers
from ...kernel.config import Settings
from ...kernel.errors import BadRequest, NotFound, SwitchboardError, ValidationFailed
from ...kernel.ids import could_be_id, new_id
from ...kernel.storable import check_storable
from ..arguments import MAX_INT, checked, validation_details
from ..arguments import Args as Body
from .documented import doc_of

__all__ = [
    "Body", "actor", "parse_body", "parse_query", "check_path_ids", "json_object", "form_or_json", "request_id", "settings", "query_int", "query_bool", "validation_details", "rate_limit",
    "request_counter", "client_address",
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
        failed: SwitchboardError | None = g.get("auth_failure")
        if failed is not None:  # already tried for this request (``count_request``)
            raise failed
        try:
            principal = await authenticate_token(token_from_headers(request.headers))
        except SwitchboardError as exc:
            g.auth_failure = exc
            raise
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


async def form_or_json() -> dict[str, Any]:
    """A form-encoded body as {name: last value} (what automation platforms' HTTP nodes
    often send), else the JSON object."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = {name: values[-1] for name, values in (await request.form).lists()}
        check_storable(form, surrogates=True, nul=True)
        return form
    return await json_object()


async def parse_body(model: type[M]) -> M:
    """Parse the body as JSON (400 ``invalid_json``) and validate it (422 with per-field details)."""
    return checked(model, await json_object())


def check_path_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """An ``..._id`` in the path that no id could be names nothing: 404 before the handler (the
    database would refuse to look it up at all)."""
    for name, value in (values or {}).items():
        if name.endswith("_id") and not could_be_id(value):
            raise NotFound()


def parse_query(model: type[M]) -> M:
    """The query string validated as ``model`` (422 naming each bad parameter). Values are
    read from their text (``limit=5``, ``detailed=true``); an empty one counts as absent."""
    given = {name: value for name, value in request.args.items() if value != ""}
    try:
        return model.model_validate(given, strict=False)
    except ValidationError as exc:
        raise ValidationFailed(QUERY_MESSAGE, details=validation_details(exc)) from None


async def rate_limit(bucket: str, key: str, *, per_address: bool = True) -> None:
    """Count this request against ``bucket`` for the client address (+ ``key``), or for ``key``
    alone: 429 past the limit."""
    limits = current_app.extensions["rate_limits"]
    await limits.hit(bucket, f"{client_address()}|{key}" if per_address else key)


def client_address() -> str:
    """The caller's address as limits count it (see ``app/kernel/client_address.py``)."""
    addresses = current_app.extensions["rate_limits"].addresses
    return addresses.of(request.remote_addr, request.headers.getlist("X-Forwarded-For"))  # type: ignore[no-any-return]


def request_counter(app: Quart) -> Callable[[], Awaitable[None]]:
    """The before-request hook that counts each request against its API key or person, or
    without one its client address: 429 past the limit, and the quota for the response's
    X-RateLimit-* headers. Routes documented ``rate_limited=False`` (health probes: a busy
    address must not take an instance out of rotation) are neither counted nor refused."""
    limits = app.extensions["rate_limits"]
    uncounted = frozenset(
        endpoint for endpoint, view in app.view_functions.items() if (doc := doc_of(view)) is not None and not doc.rate_limited
    )

    async def count_request() -> None:
        if request.endpoint in uncounted:
            return
        try:
            principal = await actor()
        except SwitchboardError:  # no caller or a refused one: the handler answers that
            quota = await limits.count_address(client_address())
        else:
            quota = await limits.count_principal(principal)
        if quota is not None:
            g.quota = quota
            refused = quota.refusal()
            if refused is not None:
                raise refused

    return count_request


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
