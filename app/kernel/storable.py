"""Text no database can store: an unpaired UTF-16 surrogate (JSON can spell one, no UTF-8
text holds it) and the NUL character (PostgreSQL's text and jsonb refuse it). Every face
checks what it parsed with ``check_storable`` before a service sees it."""

from __future__ import annotations

from typing import Any

from .errors import BadRequest, ValidationFailed

__all__ = ["check_storable", "has_lone_surrogate", "has_nul"]


def has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def check_storable(value: Any, *, surrogates: bool = True, nul: bool = True, what: str = "Request body") -> None:
    """400 ``invalid_json`` for a lone surrogate, 422 for a NUL character. The flags let a
    caller that has already ruled one out (from the raw bytes) skip its walk."""
    if surrogates and has_lone_surrogate(value):
        raise BadRequest(f"{what} contains an unpaired UTF-16 surrogate.", code="invalid_json")
    if nul and has_nul(value):
        raise ValidationFailed(details={"body": ["strings must not contain the NUL character (U+0000)"]})
