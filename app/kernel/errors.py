"""The one error tree. Every error a client sees is one of these.

    SwitchboardError(code, message, status, details)
    ├── BadRequest            400 invalid_json / bad_request
    ├── AuthenticationRequired 401 authentication_required / invalid_credentials
    ├── PlanLimitReached      402 plan_limit_reached
    ├── Forbidden             403 insufficient_permissions / key_disabled
    ├── NotFound              404 not_found
    ├── MethodNotAllowed      405 method_not_allowed
    ├── Conflict              409 duplicate_message / already_exists / agent_disabled ...
    ├── PayloadTooLarge       413 payload_too_large
    ├── ValidationFailed      422 validation_failed (and the Data API's 422 codes)
    ├── RateLimited           429 rate_limited
    ├── InternalError         500 internal_error
    ├── StorageError          502 storage_error
    └── Unavailable           503 email_not_configured ...

``to_body`` renders the contract's envelope; REST, socket.io acks and MCP tool errors all use it.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

__all__ = [
    "ErrorBody",
    "SwitchboardError",
    "BadRequest",
    "AuthenticationRequired",
    "PlanLimitReached",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "Conflict",
    "PayloadTooLarge",
    "ValidationFailed",
    "RateLimited",
    "InternalError",
    "StorageError",
    "Unavailable",
    "AUTH_MESSAGE",
    "client_error",
]

AUTH_MESSAGE = (
    "Missing or invalid API key. Include your key as: Authorization: Bearer YOUR_API_KEY"
)


class ErrorDetail(TypedDict):
    code: str
    message: str
    details: Any


class ErrorBody(TypedDict):
    """The one error envelope every face answers with."""

    error: ErrorDetail


class SwitchboardError(Exception):
    status = 500
    code = "internal_error"
    message = "Internal server error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.code = code or type(self).code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def to_body(self) -> ErrorBody:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(SwitchboardError):
    status, code, message = 400, "bad_request", "Bad request."


class AuthenticationRequired(SwitchboardError):
    status, code, message = 401, "authentication_required", AUTH_MESSAGE


class PlanLimitReached(SwitchboardError):
    status, code, message = 402, "plan_limit_reached", "Plan limit reached."


class Forbidden(SwitchboardError):
    status, code, message = 403, "insufficient_permissions", "You are not allowed to do this."


class NotFound(SwitchboardError):
    status, code, message = 404, "not_found", "Not found."


class MethodNotAllowed(SwitchboardError):
    status, code, message = 405, "method_not_allowed", "Method not allowed for this path."


class Conflict(SwitchboardError):
    status, code, message = 409, "conflict", "Conflict."


class PayloadTooLarge(SwitchboardError):
    status, code, message = 413, "payload_too_large", "Request body is too large."


class ValidationFailed(SwitchboardError):
    status, code, message = 422, "validation_failed", "Request body contains invalid fields."


class RateLimited(SwitchboardError):
    status, code, message = 429, "rate_limited", "Too many requests."


class InternalError(SwitchboardError):
    status, code, message = 500, "internal_error", "Internal server error."


class StorageError(SwitchboardError):
    """The object store (local disk or S3) failed or refused what was asked of it."""

    status, code, message = 502, "storage_error", "The file storage failed; try again."


class Unavailable(SwitchboardError):
    """This server is not set up for the request (no SMTP server for email, say)."""

    status, code, message = 503, "unavailable", "This feature is not configured on this server."


def client_error(exc: Exception) -> SwitchboardError | None:
    """What a database refusal that reached a face means to the client (every face renders it
    the same way): a value the model still refuses is 422, a constraint is 409. None for any
    other exception, which is the server's fault."""
    from tortoise.exceptions import IntegrityError, ValidationError

    if isinstance(exc, SwitchboardError):
        return exc
    if isinstance(exc, ValidationError):
        # Backstop: services validate first. The message names the column, never the value.
        return ValidationFailed(details={"body": [str(exc).split(":")[0] + ": invalid value"]})
    if isinstance(exc, IntegrityError):
        return Conflict("The request conflicts with existing data.")
    return None
