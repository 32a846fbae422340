"""The Quart application: settings, blueprints, start/stop hooks, one error renderer."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from quart import Quart, Response, g, jsonify
from werkzeug.exceptions import HTTPException

from .. import storage
from ..kernel import crypto, plans
from ..services import files, mail, push_queue
from ..kernel.config import Settings, load_settings
from ..kernel.db import close_db, init_db, migrate
from tortoise.exceptions import IntegrityError
from tortoise.exceptions import ValidationError as TortoiseValidationError

from ..kernel.errors import InternalError, SwitchboardError, client_error
from ..faces.http.request_io import request_counter, request_id
from ..kernel.client_address import ClientAddresses
from ..kernel.ratelimit import Bucket, MemoryCounter, RateLimits, RedisCounter

__all__ = ["create_app"]

log = logging.getLogger("switchboard")

# Quart/werkzeug HTTP errors mapped to the contract's codes.
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_HTTP_MESSAGES = {
    404: "No such endpoint.",
    405: "Method not allowed for this path.",
    413: "Request body is too large.",
}

Hook = Callable[[Quart], Awaitable[None]]


def create_app(settings: Settings | None = None, *, auto_migrate: bool = True) -> Quart:
    settings = settings or load_settings()
    plans.configure(settings.plans_file)
    crypto.configure(settings)
    mail.configure(settings)
    push_queue.configure(settings)
    files.configure(settings)
    storage.configure(settings)
    app = Quart("switchboard")
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["rate_limits"] = RateLimits(
        RedisCounter(settings.redis_url) if settings.redis_url else MemoryCounter(),
        {
            "login": Bucket(settings.login_attempts_per_minute),
            # Per account from anywhere: guesses spread over many addresses still run out.
            "login_account": Bucket(settings.login_attempts_per_minute * 5, window=600),
            "auth": Bucket(settings.auth_requests_per_minute),
            # Reset emails per address asked for, from anywhere: no mailbox gets flooded.
            "password_reset": Bucket(5, window=3600),
        },
        addresses=ClientAddresses(settings.trusted_proxies),
        requests_per_minute=settings.rate_limit_per_minute,
        default_plan=settings.default_plan,
    )
    # Domain modules add start/stop hooks here (outbox worker, realtime, ...).
    app.extensions["startup"] = []
    app.extensions["shutdown"] = []

    from ..faces.http import register_blueprints

    register_blueprints(app)
    _install_error_handlers(app)

    if app.extensions["rate_limits"].counts_requests:
        app.before_request(request_counter(app))

    @app.after_request
    async def _add_request_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = request_id()
        quota = g.get("quota")
        if quota is not None and (response.status_code != 429 or "X-RateLimit-Limit" not in response.headers):
            for name, value in quota.headers():  # (add: setdefault costs several times more)
                response.headers.add(name, value)
        return response

    @app.before_serving
    async def _start() -> None:
        if auto_migrate:
            await migrate(settings)
        await init_db(settings)
        for hook in app.extensions["startup"]:
            await hook(app)

    @app.after_serving
    async def _stop() -> None:
        for hook in reversed(app.extensions["shutdown"]):
            await hook(app)
        await storage.close()
        await app.extensions["rate_limits"].close()
        await close_db()

    return app


def _error_response(exc: SwitchboardError) -> Response:
    response = jsonify(exc.to_body())
    response.status_code = exc.status
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


def _install_error_handlers(app: Quart) -> None:
    @app.errorhandler(SwitchboardError)
    async def _switchboard_error(exc: SwitchboardError) -> Response:
        return _error_response(exc)

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        err = SwitchboardError(
            _HTTP_MESSAGES.get(status, exc.description or "Request failed."),
            code=_HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error"),
            # werkzeug's own headers (a 405's Allow), not its HTML body's type
            headers={k: v for k, v in exc.get_headers() if k.lower() != "content-type"},
        )
        err.status = status
        return _error_response(err)

    @app.errorhandler(TortoiseValidationError)
    async def _model_validation(exc: TortoiseValidationError) -> Response:
        return _error_response(client_error(exc) or InternalError())

    @app.errorhandler(IntegrityError)
    async def _integrity(exc: IntegrityError) -> Response:
        log.warning("integrity error reached the handler: %s", exc)
        return _error_response(client_error(exc) or InternalError())

    @app.errorhandler(Exception)
    async def _unexpected(exc: Exception) -> Response:
        rid = request_id()
        log.exception("unhandled error in request %s", rid)
        return _error_response(
            InternalError(
                "Internal server error. Quote the request id when reporting it.",
                details={"request_id": rid},
            )
        )
