"""``/openapi.json``: the OpenAPI 3.1 document, built from the app's URL map and each route's
``@documented`` facts (``/docs`` shows it: ``docs_page.py``).

Schemas come from the types the routes already use: the pydantic models they validate bodies
and query strings with, and the TypedDicts their handlers are annotated to return (so mypy
checks every answer against the schema published for it). The document is built once per app.
"""

from __future__ import annotations

import re
import types
import typing
from importlib import metadata
from typing import Any, Callable, Iterator

import orjson
from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from quart import Blueprint, Quart, Response, current_app
from werkzeug.routing import Rule

from ...kernel.errors import ErrorBody
from .documented import Doc, doc_of

__all__ = ["bp", "build_document", "undocumented", "NOT_DOCUMENTED"]

bp = Blueprint("openapi", __name__)

# Endpoints that are not part of the API: the document, its page, and Quart's static files.
NOT_DOCUMENTED = frozenset({"openapi.document", "docs_page.page", "docs_page.asset", "static"})
_OWN = frozenset({"openapi", "docs_page"})  # blueprints that are not part of the API
_IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
_SCHEMAS = "#/components/schemas/{model}"

# Each error status: its name in components/responses, what it means, an example code and message.
_ERRORS: dict[int, tuple[str, str, str, str]] = {
    400: ("BadRequest", "The body is not valid JSON.", "invalid_json",
          "Request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    401: ("Unauthorized", "No credentials, or credentials that are not valid.", "authentication_required",
          "Missing or invalid API key. Include your key as: Authorization: Bearer YOUR_API_KEY"),
    402: ("PlanLimitReached", "The organization's plan allows no more of these.", "plan_limit_reached",
          "You have reached the maximum of 3 members on the Free plan. Upgrade to create more."),
    403: ("Forbidden", "The caller lacks the scope or role this needs (insufficient_permissions, details name it), "
          "or the API key is disabled (key_disabled).", "insufficient_permissions",
          "This action requires the 'conversations:read' permission."),
    404: ("NotFound", "No such object in the caller's organization (another organization's object is not found "
          "either), or no such path.", "not_found", "Not found."),
    405: ("MethodNotAllowed", "The path does not take this method.", "method_not_allowed",
          "Method not allowed for this path."),
    409: ("Conflict", "The request conflicts with the current state (a repeated external_message_id is "
          "duplicate_message, a disabled agent agent_disabled).", "duplicate_message",
          "Message with this external_message_id already exists"),
    410: ("Gone", "The upload token has expired; request a new upload.", "upload_expired",
          "This upload token has expired; request a new upload."),
    413: ("PayloadTooLarge", "The body is larger than the server accepts.", "payload_too_large",
          "Request body is too large."),
    422: ("ValidationFailed", "A field, query parameter or value is not valid; details names each (validation_failed, "
          "and on the Data API field_not_found, invalid_filter, invalid_sort).", "validation_failed",
          "Request body contains invalid fields."),
    429: ("RateLimited", "Too many requests; Retry-After says when to try again.", "rate_limited",
          "Too many requests. Try again later."),
    502: ("StorageError", "The file storage failed.", "storage_error", "The file storage failed; try again."),
    503: ("Unavailable", "This server is not set up for the request (email_not_configured: no SMTP server).",
          "email_not_configured", "Password reset needs email, and this server has no SMTP server configured."),
}

_SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ak_...",
        "description": "An organization's API key: `Authorization: Bearer ak_...`. Keys carry scopes; each operation "
        "names the one it needs (x-required-scope).",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "The same API key in the `x-api-key` header.",
    },
    "session": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "st_...",
        "description": "A person's session token from `POST /api/v1/auth/login`: they act with their role's scopes.",
    },
}

# Sent on every counted answer (the caller's quota), not only on a 429.
_QUOTA_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per window.",
    "X-RateLimit-Remaining": "Requests left in this window.",
    "X-RateLimit-Reset": "Seconds until the window resets.",
}

_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def _path(rule: Rule) -> str:
    return _ARGUMENT.sub(r"{\1}", rule.rule)


def _rules(app: Quart) -> Iterator[tuple[Rule, Callable[..., Any]]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint not in NOT_DOCUMENTED:
            yield rule, app.view_functions[rule.endpoint]


def undocumented(app: Quart) -> list[str]:
    """The routes with no ``@documented`` facts, or whose answer type does not say its shape."""
    missing = []
    for rule, handler in _rules(app):
        doc = doc_of(handler)
        if doc is None:
            missing.append(f"{rule.rule} ({rule.endpoint}): not @documented")
        elif not _described(_answer_type(handler)):
            missing.append(f"{rule.rule} ({rule.endpoint}): its answer type says nothing of its shape")
    return missing


def _answer_type(handler: Callable[..., Any]) -> Any:
    """The handler's return annotation: a ``(body, status)`` tuple gives the body's type, a bare
    ``Response`` no content."""
    answer = typing.get_type_hints(handler).get("return")
    if typing.get_origin(answer) is tuple:
        answer = typing.get_args(answer)[0]
    return None if answer is Response else answer


def _described(answer: Any) -> bool:
    """Whether a type says what its JSON holds (a bare dict or Any says nothing)."""
    origin = typing.get_origin(answer)
    if origin in (typing.Union, types.UnionType):
        return all(_described(a) for a in typing.get_args(answer))
    return not (answer is Any or answer is dict or origin is dict)


def _drop_null_defaults(node: Any) -> None:
    """A ``null`` default goes where the schema refuses null (a field that may be left out but
    not sent as null, typed through ``json_schema_extra``): a default must be a valid value."""
    if isinstance(node, dict):
        if "default" in node and node["default"] is None and not _accepts_null(node):
            del node["default"]
        for value in node.values():
            _drop_null_defaults(value)
    elif isinstance(node, list):
        for value in node:
            _drop_null_defaults(value)


def _accepts_null(schema: dict[str, Any]) -> bool:
    if "$ref" in schema or not schema.keys() - {"default", "title", "description", "examples"}:
        return True  # a reference (pydantic puts a nullable one in anyOf) or anything at all
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in schema:
        return None in schema["enum"]
    if "const" in schema:
        return schema["const"] is None
    return any(_accepts_null(branch) for branch in schema.get("anyOf", ()))


def build_document(app: Quart) -> dict[str, Any]:
    """The whole document (built once per app, then served from memory)."""
    cached: dict[str, Any] | None = app.extensions.get("openapi")
    if cached is None:
        cached = app.extensions["openapi"] = _build(app)
    return cached


def _build(app: Quart) -> dict[str, Any]:
    ops: list[tuple[str, str, Rule, Callable[..., Any], Doc]] = []
    for rule, handler in _rules(app):
        doc = doc_of(handler)
        if doc is None:
            continue
        for method in sorted((rule.methods or set()) - _IGNORED_METHODS):
            ops.append((_path(rule), method.lower(), rule, handler, doc))

    # One pass through pydantic for every type, so shared types become one components entry.
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [("error", "serialization", TypeAdapter(ErrorBody))]
    for path, method, _, handler, doc in ops:
        key = (path, method)
        if doc.body is not None:
            inputs.append(((key, "body"), "validation", TypeAdapter(doc.body)))
        if doc.query is not None:
            inputs.append(((key, "query"), "validation", TypeAdapter(doc.query)))
        answer = _answer_type(handler)
        if answer is not None:
            inputs.append(((key, doc.status), "serialization", TypeAdapter(answer)))
        for status, also in doc.also.items():
            inputs.append(((key, status), "serialization", TypeAdapter(also)))
    schemas, defs = TypeAdapter.json_schemas(inputs, ref_template=_SCHEMAS)
    components: dict[str, Any] = dict(defs.get("$defs", {}))
    _drop_null_defaults(components)
    error_schema = schemas[("error", "serialization")]

    paths: dict[str, dict[str, Any]] = {}
    for path, method, rule, handler, doc in ops:
        key = (path, method)

        def schema(part: Any, mode: JsonSchemaMode = "serialization", key: Any = key) -> dict[str, Any]:
            return schemas[((key, part), mode)]

        paths.setdefault(path, {})[method] = _operation(rule, method, handler, doc, schema, components)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Switchboard API",
            "version": _version(),
            "description": (
                "Chat and notification gateway for agents. Every error answer is "
                '`{"error": {"code", "message", "details"}}`. Authenticate with an API key '
                "(`Authorization: Bearer ak_...` or `x-api-key`) or a person's session token."
            ),
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        # in the order the blueprints are registered (Swagger UI shows them so)
        "tags": [{"name": tag} for tag in dict.fromkeys(_tag(name) for name in app.blueprints if name not in _OWN)],
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {name: _error_response(status, error_schema) for status, (name, *_) in _ERRORS.items()},
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }


def _version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:
        return "0"


def _error_response(status: int, schema: dict[str, Any]) -> dict[str, Any]:
    _, description, code, message = _ERRORS[status]
    details = {"content": ["Field required"]} if status == 422 else None
    example: ErrorBody = {"error": {"code": code, "message": message, "details": details}}
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }
    if status == 429:
        out["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
            **{name: {"description": what, "schema": {"type": "integer"}} for name, what in _QUOTA_HEADERS.items()},
        }
    if status == 405:
        out["headers"] = {"Allow": {"description": "The methods the path takes.", "schema": {"type": "string"}}}
    return out


def _operation(
    rule: Rule, method: str, handler: Callable[..., Any], doc: Doc,
    schema: Callable[..., dict[str, Any]], components: dict[str, Any],
) -> dict[str, Any]:
    description = [doc.description or (handler.__doc__ or "").strip()]
    if doc.scope:
        description.append(f"Requires the `{doc.scope}` scope (API keys; people have the scopes of their role).")
    if doc.role == "admin":
        description.append(
            "People: owners and admins only. API keys: " + ("the scope above." if doc.scope else "every scope.")
        )
    if not doc.auth:
        description.append("No credentials needed.")
    several = len((rule.methods or set()) - _IGNORED_METHODS) > 1
    op: dict[str, Any] = {
        "operationId": rule.endpoint.replace(".", "_") + (f"_{method}" if several else ""),
        "summary": doc.summary,
        "tags": [_tag(rule.endpoint.partition(".")[0])],
    }
    if text := "\n\n".join(d for d in description if d):
        op["description"] = text
    if doc.auth:
        scopes = [doc.scope] if doc.scope else []
        op["security"] = [{name: scopes} for name in _SECURITY_SCHEMES]
        if doc.scope:
            op["x-required-scope"] = doc.scope
        if doc.role:
            op["x-required-role"] = doc.role
    else:
        op["security"] = []

    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in sorted(rule.arguments)
    ]
    if doc.query is not None:
        parameters += _query_parameters(schema("query", "validation"), components)
    if parameters:
        op["parameters"] = parameters

    if doc.body is not None:
        body_schema = schema("body", "validation")
        op["requestBody"] = {
            "required": bool(_resolve(body_schema, components).get("required")),
            "content": {media: {"schema": body_schema} for media in doc.body_types},
        }

    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": doc.summary}
    if _answer_type(handler) is not None:
        success["content"] = {"application/json": {"schema": schema(doc.status)}}
    responses[str(doc.status)] = success
    for status in doc.also:
        responses[str(status)] = {"description": doc.summary, "content": {"application/json": {"schema": schema(status)}}}
    for status in sorted(_error_statuses(rule, doc)):
        responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    op["responses"] = responses
    return op


def _tag(blueprint: str) -> str:
    return blueprint.removesuffix("_v1")


def _error_statuses(rule: Rule, doc: Doc) -> set[int]:
    """What a route can answer with besides success: the errors every route of its kind has
    (quotas, credentials, ids in the path, bodies, query strings) and those it names."""
    statuses = set(doc.errors)
    if doc.rate_limited:
        statuses.add(429)
    if doc.auth:
        statuses |= {401, 403}
    if rule.arguments:
        statuses.add(404)
    if doc.body is not None:
        statuses |= {400, 413, 422}
    if doc.query is not None:
        statuses.add(422)
    return statuses


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return dict(components[ref.rpartition("/")[2]])
    return schema


def _query_parameters(schema: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    model = _resolve(schema, components)
    required = set(model.get("required", ()))
    out = []
    for name, prop in model.get("properties", {}).items():
        prop = _not_null({k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)})
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        param["schema"] = prop
        out.append(param)
    return out


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without its ``null`` branch: a query string is text, and
    absent is how it says null."""
    branches = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) == 1 and len(schema["anyOf"]) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        return {**branches[0], **rest}
    return schema


# ---------------------------------------------------------------- the route


@bp.get("/openapi.json")
async def document() -> Response:
    app: Quart = current_app._get_current_object()  # type: ignore[attr-defined]
    encoded: bytes | None = app.extensions.get("openapi_json")
    if encoded is None:
        encoded = app.extensions["openapi_json"] = orjson.dumps(build_document(app))
    response = Response(encoded, mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public document other tools may load
    return response
