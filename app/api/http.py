"""What every handler shares: the caller, the parsed body, query parameters."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from quart import current_app, g, request

from ..auth import Principal, authenticate_token, require_scope, token_from_headers
from ..config import Settings
from ..errors import BadRequest, ValidationFailed

__all__ = ["Body", "actor", "parse_body", "settings", "query_int", "query_bool", "validation_details"]

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """Base of request bodies: unknown keys are ignored, types are not coerced loosely."""

    model_config = ConfigDict(extra="ignore", strict=True)


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


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def validation_details(exc: ValidationError) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        details.setdefault(_path(tuple(err["loc"])), []).append(err["msg"])
    return details


async def raw_json() -> Any:
    data = await request.get_data()
    if not data or not data.strip():
        return {}
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}", code="invalid_json") from exc


async def parse_body(model: type[M]) -> M:
    """Parse the body as JSON (400 ``invalid_json``) and validate it (422 with per-field details)."""
    data = await raw_json()
    if not isinstance(data, dict):
        raise ValidationFailed("Request body must be a JSON object.", details={"body": ["must be a JSON object"]})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc)) from exc


def query_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(details={name: ["must be an integer"]}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationFailed(details={name: [f"must be {bound}"]})
    return value


def query_bool(name: str, default: bool = False) -> bool:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ValidationFailed(details={name: ["must be true or false"]})
